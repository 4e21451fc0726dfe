#!/usr/bin/python3
# smtp_auth.py PORT HELO LOCAL-IP FROM TO SUBJECT [HEADER...] -- one message over SMTP
# after AUTH ANONYMOUS (Cyrus SASL's anonymous mechanism: Postfix then hands the milter
# an {auth_authen} macro), from LOCAL-IP.  Swaks cannot do ANONYMOUS.  Prints one line
# per step ("auth CODE TEXT", then "250 QUEUE-ID" or "CODE TEXT" of the refusal);
# exit 0 when the message was queued, 1 when refused, 2 when AUTH failed.
import base64
import re
import smtplib
import sys

port, helo, local_ip, frm, to, subject = sys.argv[1:7]
headers = sys.argv[7:]
s = smtplib.SMTP(local_hostname=helo, timeout=30, source_address=(local_ip, 0))
s.connect('127.0.0.1', int(port))
s.ehlo(helo)
code, resp = s.docmd('AUTH', 'ANONYMOUS ' + base64.b64encode(b'e2e-trace').decode())
print('auth', code, resp.decode(errors='replace'))
if code != 235:
    sys.exit(2)
msg = ('From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n' % (frm, to, subject) +
       ''.join(h + '\r\n' for h in headers) + '\r\n' + 'authenticated body\r\n')
try:
    s.mail(frm)
    code, resp = s.rcpt(to)
    if code >= 400:
        print(code, resp.decode(errors='replace'))
        sys.exit(1)
    code, resp = s.data(msg.encode())
except smtplib.SMTPResponseException as e:
    print(e.smtp_code, e.smtp_error.decode(errors='replace'))
    sys.exit(1)
m = re.search(rb'queued as ([0-9A-Za-z]+)', resp)
print(code, m.group(1).decode() if m else resp.decode(errors='replace'))
s.quit()
sys.exit(0 if code == 250 else 1)
