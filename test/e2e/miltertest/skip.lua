-- skip.lua -- offer SMFIP_SKIP (and no NR_BODY); the e2e config has max_size = 4k, so
-- rmilter must answer the chunk that reaches 4 KB with SMFIR_SKIP, and EOM must still
-- carry the policy result.
dofile(mtdir .. "/_common.lua")

run("skip", function()
  local conn = open(6, SMFIP_SKIP + SMFIP_NOUNKNOWN, nil)
  mt.echo("negotiated protocol flags: " .. flags(conn))
  connect_helo(conn)
  local chunks = {}
  for i = 1, 8 do chunks[i] = string.rep("skip body line " .. i .. "\r\n", 40) end
  envelope(conn, "<sender@test.example>", { "<rcpt@dest.example>" })
  headers(conn, { { "X-Rmilter-Test", "addheader X-Skip yes" } })
  local s = body(conn, chunks)
  mt.echo("body: " .. (s or "all chunks continued"))
  check(s == "skip", "no SMFIR_SKIP after max_size (4k) of body")
  check(mt.eom(conn) == nil, "eom failed")
  local r = mt.getreply(conn)
  check(r == SMFIR_CONTINUE or r == SMFIR_ACCEPT, "final reply '" .. string.char(r) .. "'")
  check(hdradd(conn, "X-Skip", "yes"), "ADDHEADER X-Skip missing")
  mt.disconnect(conn)
end)
