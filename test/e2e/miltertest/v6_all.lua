-- v6_all.lua -- negotiate as a v6 MTA offering every action and every protocol step
-- (libmilter defaults), then check every test-policy EOM action and the envelope
-- rejects on one connection.
dofile(mtdir .. "/_common.lua")

run("v6_all", function()
  local conn = open(nil, nil, nil)
  mt.echo("negotiated protocol flags: " .. flags(conn))
  for _, a in ipairs({ "ADDHDRS", "CHGHDRS", "CHGBODY", "ADDRCPT", "DELRCPT", "QUARANTINE", "CHGFROM" }) do
    check(mt.test_action(conn, _G["SMFIF_" .. a]), "action SMFIF_" .. a .. " not requested")
  end
  connect_helo(conn)

  -- 1: every edit at once
  local r = message(conn, {
      { "From", "sender@test.example" }, { "Subject", "orig" }, { "X-Del", "gone" },
      { "X-Rmilter-Test", "addheader X-Added hello; insheader 0 X-Top top; " ..
        "chgheader Subject 1 changed; delheader X-Del 1; chgfrom <new@test.example>; " ..
        "addrcpt <added@dest.example>; delrcpt <rcpt@dest.example>; quarantine held; " ..
        "replbody new body" } })
  check(r == SMFIR_CONTINUE or r == SMFIR_ACCEPT, "message 1: final reply '" .. string.char(r) .. "'")
  check(hdradd(conn, "X-Added", "hello"), "ADDHEADER X-Added missing")
  check(mt.eom_check(conn, MT_HDRINSERT, "X-Top"), "INSHEADER X-Top missing")
  check(mt.eom_check(conn, MT_HDRCHANGE, "Subject", "changed") or
        mt.eom_check(conn, MT_HDRCHANGE, "Subject", " changed"), "CHGHEADER Subject missing")
  check(mt.eom_check(conn, MT_HDRDELETE, "X-Del"), "delete of X-Del missing")
  check(mt.eom_check(conn, MT_RCPTADD, "<added@dest.example>"), "ADDRCPT missing")
  check(mt.eom_check(conn, MT_RCPTDELETE, "<rcpt@dest.example>"), "DELRCPT missing")
  check(mt.eom_check(conn, MT_QUARANTINE, "held"), "QUARANTINE held missing")
  check(mt.eom_check(conn, MT_BODYCHANGE, "new body\r\n") or mt.eom_check(conn, MT_BODYCHANGE, "new body"),
        "REPLBODY 'new body' missing")
  mt.abort(conn)

  -- 2: default reject
  r = message(conn, { { "X-Rmilter-Test", "reject" } })
  check(r == SMFIR_REPLYCODE, "message 2: expected 'y', got '" .. string.char(r) .. "'")
  check(mt.eom_check(conn, MT_SMTPREPLY, "550", "5.7.1", "Rejected by test policy"), "message 2: wrong reply text")
  check(not mt.eom_check(conn, MT_HDRADD), "message 2: header of message 1 carried over")
  mt.abort(conn)

  -- 3: custom tempfail
  r = message(conn, { { "X-Rmilter-Test", "tempfail 452 4.3.1 try later" } })
  check(r == SMFIR_REPLYCODE, "message 3: expected 'y', got '" .. string.char(r) .. "'")
  check(mt.eom_check(conn, MT_SMTPREPLY, "452", "4.3.1", "try later"), "message 3: wrong reply text")
  mt.abort(conn)

  -- 4: discard, 5: accept
  r = message(conn, { { "X-Rmilter-Test", "discard" } })
  check(r == SMFIR_DISCARD, "message 4: expected 'd', got '" .. string.char(r) .. "'")
  mt.abort(conn)
  r = message(conn, { { "X-Rmilter-Test", "accept" } })
  check(r == SMFIR_ACCEPT, "message 5: expected 'a', got '" .. string.char(r) .. "'")
  mt.abort(conn)

  -- 6: envelope: rejected sender
  if not mt.test_option(conn, SMFIP_NOMAIL) and not mt.test_option(conn, SMFIP_NR_MAIL) then
    check(mt.mailfrom(conn, "<test-reject-mail@test.example>") == nil, "mailfrom failed")
    reply_is(conn, SMFIR_REPLYCODE, "MAIL test-reject-mail")
    mt.abort(conn)
  end
  -- 7: rejected and deferred recipients, then a normal one
  if not mt.test_option(conn, SMFIP_NORCPT) and not mt.test_option(conn, SMFIP_NR_RCPT) then
    envelope(conn, "<sender@test.example>", {})
    check(mt.rcptto(conn, "<test-reject-rcpt@dest.example>") == nil, "rcptto failed")
    reply_is(conn, SMFIR_REPLYCODE, "RCPT test-reject-rcpt")
    check(mt.rcptto(conn, "<test-tempfail-rcpt@dest.example>") == nil, "rcptto failed")
    reply_is(conn, SMFIR_REPLYCODE, "RCPT test-tempfail-rcpt")
    check(mt.rcptto(conn, "<good@dest.example>") == nil, "rcptto failed")
    reply_is(conn, SMFIR_CONTINUE, "RCPT good")
    mt.abort(conn)
  end
  mt.disconnect(conn)
end)
