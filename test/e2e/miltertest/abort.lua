-- abort.lua -- a message aborted in the middle of its body (its header asks for a
-- reject), then a second message on the same connection must get only its own result;
-- then an abort right after MAIL, and an abort outside any transaction (Postfix
-- sends those), and a third message.
dofile(mtdir .. "/_common.lua")

run("abort", function()
  local conn = open(nil, nil, nil)
  connect_helo(conn)
  envelope(conn, "<sender@test.example>", { "<rcpt@dest.example>" })
  headers(conn, { { "X-Rmilter-Test", "reject; addheader X-First one" } })
  body(conn, { "first part of the body\r\n" })
  check(mt.abort(conn) == nil, "abort failed")

  local r = message(conn, { { "X-Rmilter-Test", "addheader X-Second two" } })
  check(r == SMFIR_CONTINUE or r == SMFIR_ACCEPT,
        "second message: final reply '" .. string.char(r) .. "' (state of the aborted message leaked?)")
  check(hdradd(conn, "X-Second", "two"), "second message: X-Second missing")
  check(not mt.eom_check(conn, MT_HDRADD, "X-First"), "second message got X-First of the aborted one")
  check(mt.abort(conn) == nil, "abort after EOM failed")
  check(mt.abort(conn) == nil, "abort outside a transaction failed")

  envelope(conn, "<sender@test.example>", { "<rcpt@dest.example>" })
  check(mt.abort(conn) == nil, "abort after RCPT failed")
  r = message(conn, { { "X-Rmilter-Test", "addheader X-Third three" } })
  check(r == SMFIR_CONTINUE or r == SMFIR_ACCEPT, "third message: final reply '" .. string.char(r) .. "'")
  check(hdradd(conn, "X-Third", "three"), "third message: X-Third missing")
  mt.disconnect(conn)
end)
