#!/usr/bin/python3
# mload_sum.py FILE... -- the verdicts of one or more mload -j -f runs (one JSON line per
# file; a file without one counts as a failed run), summed, on one line of KEY=VALUE:
#   runs failed_runs messages errors timeouts unfinished accepted (c+a) tempfail (t, or
#   a 'y' reply code 4xx) reject (r, or 5xx) discard (d) other tempfail_rcpt
#   tempfail_data tempfail_eoh tempfail_eob hdr_added (h+i mods) max_ms p99_ms (the
#   worst run) elapsed_s (the longest run).  Needs mload -f (finals_at) for the 'y'
#   replies and the stages.
import json
import sys

tot = dict(runs=0, failed_runs=0, messages=0, errors=0, timeouts=0, unfinished=0,
           accepted=0, tempfail=0, reject=0, discard=0, other=0, tempfail_rcpt=0,
           tempfail_data=0, tempfail_eoh=0, tempfail_eob=0, hdr_added=0)
worst = dict(max_ms=0.0, p99_ms=0.0, elapsed_s=0.0)
for path in sys.argv[1:]:
    tot['runs'] += 1
    try:
        line = [l for l in open(path) if l.startswith('{')][-1]
        d = json.loads(line)
    except (OSError, IndexError, ValueError):
        tot['failed_runs'] += 1
        continue
    for k in ('messages', 'errors', 'timeouts', 'unfinished'):
        tot[k] += d.get(k, 0)
    f = d.get('finals', {})
    at = d.get('finals_at', {})
    tot['accepted'] += f.get('c', 0) + f.get('a', 0)
    tot['discard'] += f.get('d', 0)
    # from the stages: 'y' replies are classed there (T 4xx, R 5xx, Y other)
    for st, v in at.items():
        tot['tempfail'] += v.get('t', 0) + v.get('T', 0)
        tot['reject'] += v.get('r', 0) + v.get('R', 0)
        tot['other'] += v.get('Y', 0) + v.get('4', 0)
    for st, key in (('RCPT', 'tempfail_rcpt'), ('DATA', 'tempfail_data'),
                    ('EOH', 'tempfail_eoh'), ('EOB', 'tempfail_eob')):
        v = at.get(st, {})
        tot[key] += v.get('t', 0) + v.get('T', 0)
    m = d.get('mods', {})
    tot['hdr_added'] += m.get('h', 0) + m.get('i', 0)
    for k in worst:
        worst[k] = max(worst[k], float(d.get(k, 0)))
print(' '.join(f'{k}={v}' for k, v in tot.items()) + ' ' +
      ' '.join(f'{k}={v:.1f}' for k, v in worst.items()))
