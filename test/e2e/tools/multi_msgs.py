#!/usr/bin/python3
# multi_msgs.py PORT TOKEN -- three transactions on ONE SMTP connection:
#   1. a message with "X-Rmilter-Test: addheader X-Leak TOKEN"      -> must be queued
#   2. a RSET'd transaction (MAIL, RCPT, RSET)
#   3. a message with "X-Rmilter-Test: reject"                       -> must get 550
#   4. a plain message                                               -> must be queued
# Prints "msg1 CODE QID", "rset CODE", "msg2 CODE TEXT", "msg3 CODE QID" lines.
import re
import smtplib
import sys

port, token = int(sys.argv[1]), sys.argv[2]


def msg(subject, extra=''):
    return (f"From: sender@test.example\r\nTo: rcpt@dest.example\r\n"
            f"Subject: {subject} {token}\r\n{extra}\r\nbody of {subject} {token}\r\n")


def qid(resp):
    m = re.search(rb'queued as ([0-9A-Za-z]+)', resp)
    return m.group(1).decode() if m else '-'


s = smtplib.SMTP('127.0.0.1', port, local_hostname=f'multi-{token}.client.test', timeout=30)
s.ehlo(f'multi-{token}.client.test')
s.mail('sender@test.example')
s.rcpt('rcpt@dest.example')
code, resp = s.data(msg('first', f'X-Rmilter-Test: addheader X-Leak {token}\r\n'))
print('msg1', code, qid(resp), flush=True)

s.mail('sender@test.example')
s.rcpt('rcpt@dest.example')
code, resp = s.rset()
print('rset', code, flush=True)

s.mail('sender@test.example')
s.rcpt('rcpt@dest.example')
try:
    code, resp = s.data(msg('second', 'X-Rmilter-Test: reject\r\n'))
except smtplib.SMTPDataError as e:
    code, resp = e.smtp_code, e.smtp_error
print('msg2', code, resp.decode(errors='replace').replace('\n', ' '), flush=True)

s.mail('sender@test.example')
s.rcpt('rcpt@dest.example')
code, resp = s.data(msg('third'))
print('msg3', code, qid(resp), flush=True)
s.quit()
