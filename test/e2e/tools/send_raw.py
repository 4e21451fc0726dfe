#!/usr/bin/python3
# send_raw.py PORT HELO FROM TO[,TO...] FILE -- send FILE verbatim (LF -> CRLF) as one
# message over SMTP; prints "CODE QUEUE-ID-or-TEXT".  For messages swaks would rewrite
# (swaks turns a literal backslash-n in headers into a line break).
import re
import smtplib
import sys

port, helo, frm, to, path = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
data = open(path, 'rb').read().replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')
s = smtplib.SMTP('127.0.0.1', port, local_hostname=helo, timeout=30)
s.ehlo(helo)
s.mail(frm)
for r in to.split(','):
    s.rcpt(r)
try:
    code, resp = s.data(data)
except smtplib.SMTPDataError as e:
    code, resp = e.smtp_code, e.smtp_error
m = re.search(rb'queued as ([0-9A-Za-z]+)', resp)
print(code, m.group(1).decode() if m else resp.decode(errors='replace'))
s.quit()
