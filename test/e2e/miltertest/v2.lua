-- v2.lua -- negotiate as an old version-2 MTA: SMFI_V1_PROT steps (0x3F) and
-- SMFI_V1_ACTS actions (0x0F).  rmilter must answer version <= 2, ask only for
-- offered actions/steps, and must not send edits it was not granted.
dofile(mtdir .. "/_common.lua")

run("v2", function()
  local conn = open(2, 0x3F, 0x0F)
  mt.echo("negotiated protocol flags: " .. flags(conn))
  for _, a in ipairs({ "CHGHDRS", "QUARANTINE", "CHGFROM", "ADDRCPT_PAR", "SETSYMLIST" }) do
    check(not mt.test_action(conn, _G["SMFIF_" .. a]), "requested action SMFIF_" .. a .. " not offered by the MTA")
  end
  for _, o in ipairs({ "NR_HDR", "NOUNKNOWN", "NODATA", "SKIP", "RCPT_REJ", "NR_CONN", "NR_HELO",
                       "NR_MAIL", "NR_RCPT", "NR_DATA", "NR_UNKN", "NR_EOH", "NR_BODY", "HDR_LEADSPC", "NOEOH" }) do
    check(not mt.test_option(conn, _G["SMFIP_" .. o]), "requested protocol bit SMFIP_" .. o .. " not offered by the MTA")
  end
  connect_helo(conn)
  local r = message(conn, { { "Subject", "orig" },
      { "X-Rmilter-Test", "addheader X-V2 yes; chgheader Subject 1 nope; quarantine q" } })
  check(r == SMFIR_CONTINUE or r == SMFIR_ACCEPT, "final reply '" .. string.char(r) .. "'")
  check(hdradd(conn, "X-V2", "yes"), "ADDHEADER X-V2 missing")
  check(not mt.eom_check(conn, MT_HDRCHANGE), "CHGHEADER sent although SMFIF_CHGHDRS was not granted")
  check(not mt.eom_check(conn, MT_QUARANTINE), "QUARANTINE sent although SMFIF_QUARANTINE was not granted")
  mt.abort(conn)
  r = message(conn, { { "X-Rmilter-Test", "reject" } })
  check(r == SMFIR_REPLYCODE or r == SMFIR_REJECT, "reject under v2: got '" .. string.char(r) .. "'")
  mt.disconnect(conn)
end)
