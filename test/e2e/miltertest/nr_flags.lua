-- nr_flags.lua -- offer every no-reply bit (and nothing else optional); whatever NR
-- bits rmilter takes, it must not answer those stages (miltertest then reads no reply,
-- so a stray reply would be read as the answer to the next step and break the run).
dofile(mtdir .. "/_common.lua")

local NR = SMFIP_NR_CONN + SMFIP_NR_HELO + SMFIP_NR_MAIL + SMFIP_NR_RCPT + SMFIP_NR_DATA +
           SMFIP_NR_UNKN + SMFIP_NR_EOH + SMFIP_NR_BODY + SMFIP_NR_HDR

run("nr_flags", function()
  local conn = open(6, NR, nil)
  mt.echo("negotiated protocol flags: " .. flags(conn))
  connect_helo(conn)
  for i = 1, 3 do
    local r = message(conn, { { "From", "sender@test.example" }, { "X-Rmilter-Test", "addheader X-NR n" .. i } },
                      { "chunk one\r\n", "chunk two\r\n" })
    check(r == SMFIR_CONTINUE or r == SMFIR_ACCEPT, "message " .. i .. ": final reply '" .. string.char(r) .. "'")
    check(hdradd(conn, "X-NR", "n" .. i), "message " .. i .. ": ADDHEADER X-NR n" .. i .. " missing")
    mt.abort(conn)
  end
  mt.disconnect(conn)
end)
