#!/usr/bin/env python3
"""Checks that every relative Markdown link resolves to an existing file and, for #anchors, to a
heading of the target (GitHub's slug rules). Usage, from the repository root:
    python3 docs/check_links.py README.md CONTRIBUTING.md SECURITY.md examples/README.md docs/*.md
Exit status 1 when a link is broken. (Could become a step of .ci/run.)"""
import re, os, sys
files = sys.argv[1:]
def slug(h):
    h = h.strip().lower()
    h = re.sub(r'[^\w\- ]', '', h)   # GitHub: drop punctuation except - and _ ; keep unicode letters
    return h.replace(' ', '-')
def anchors(path):
    out=set(); counts={}
    infence=False
    for line in open(path, encoding='utf-8'):
        if line.startswith('```'): infence = not infence; continue
        if infence: continue
        m=re.match(r'^(#{1,6})\s+(.*)$', line)
        if m:
            s=slug(m.group(2)); n=counts.get(s,0); counts[s]=n+1
            out.add(s if n==0 else f'{s}-{n}')
    return out
bad=0; n=0
for f in files:
    text=open(f,encoding='utf-8').read()
    text=re.sub(r'```.*?```', '', text, flags=re.S)
    for m in re.finditer(r'\]\(([^)\s]+)\)', text):
        link=m.group(1)
        if re.match(r'^[a-z]+:', link): continue
        n+=1
        path, _, frag = link.partition('#')
        target = os.path.normpath(os.path.join(os.path.dirname(f), path)) if path else f
        if not os.path.exists(target):
            print(f'{f}: missing file {link}'); bad+=1; continue
        if frag:
            if os.path.isdir(target) or not target.endswith('.md'):
                print(f'{f}: anchor on non-md {link}'); bad+=1; continue
            if frag not in anchors(target):
                print(f'{f}: missing anchor {link}'); bad+=1
print(f'{n} relative links checked, {bad} broken'); sys.exit(1 if bad else 0)
