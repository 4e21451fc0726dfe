-- _common.lua -- helpers shared by the miltertest scripts (loaded with dofile; the
-- runner skips files starting with "_").  Globals from the command line:
--   port   rmilter's TCP port on 127.0.0.1
-- miltertest 2.11 quirks handled here:
--   * a failing assert()/error() ends the run with exit 1 and no message: every
--     script runs its body through run(), which prints "FAIL: ..." or "PASS";
--   * mt.negotiate(conn, version, STEPS, ACTIONS): the 3rd argument is the
--     protocol-step mask and the 4th the action mask (the man page has them swapped);
--   * mt.helo/eoh/bodystring/... raise an error if the matching SMFIP_NO* bit was
--     negotiated, so every step goes through a guard below;
--   * after a step whose SMFIP_NR_* bit was negotiated miltertest reads no reply and
--     mt.getreply() keeps the previous value, so replies are checked only without NR.

sock = "inet:" .. port .. "@127.0.0.1"

function check(cond, msg)
  if not cond then error(msg, 2) end
end

local function ch(r)
  if r == nil or r == 0 then return "none" end
  return string.char(r)
end

function open(version, steps, actions)
  local conn = mt.connect(sock, 40, 0.25)
  check(conn ~= nil, "mt.connect(" .. sock .. ") failed")
  local err = mt.negotiate(conn, version, steps, actions)
  check(err == nil, "negotiate failed: " .. tostring(err))
  return conn
end

function flags(conn)
  local names = { "NOCONNECT", "NOHELO", "NOMAIL", "NORCPT", "NOBODY", "NOHDRS", "NOEOH",
                  "NR_HDR", "NOUNKNOWN", "NODATA", "SKIP", "RCPT_REJ", "NR_CONN", "NR_HELO",
                  "NR_MAIL", "NR_RCPT", "NR_DATA", "NR_UNKN", "NR_EOH", "NR_BODY", "HDR_LEADSPC" }
  local on = {}
  for _, n in ipairs(names) do
    if mt.test_option(conn, _G["SMFIP_" .. n]) then table.insert(on, n) end
  end
  return table.concat(on, ",")
end

-- expect REPLY after a step unless NR was negotiated for it
function expect(conn, nrbit, want, what)
  if nrbit ~= nil and mt.test_option(conn, nrbit) then return end
  local r = mt.getreply(conn)
  check(r == want, what .. ": expected reply '" .. ch(want) .. "', got '" .. ch(r) .. "'")
end

function lead(conn)
  if mt.test_option(conn, SMFIP_HDR_LEADSPC) then return " " end
  return ""
end

function connect_helo(conn)
  if not mt.test_option(conn, SMFIP_NOCONNECT) then
    check(mt.conninfo(conn, "client.test.example", "192.0.2.1") == nil, "conninfo failed")
    expect(conn, SMFIP_NR_CONN, SMFIR_CONTINUE, "CONNECT")
  end
  if not mt.test_option(conn, SMFIP_NOHELO) then
    check(mt.helo(conn, "client.test.example") == nil, "helo failed")
    expect(conn, SMFIP_NR_HELO, SMFIR_CONTINUE, "HELO")
  end
end

function envelope(conn, from, rcpts)
  if not mt.test_option(conn, SMFIP_NOMAIL) then
    check(mt.mailfrom(conn, from) == nil, "mailfrom failed")
    expect(conn, SMFIP_NR_MAIL, SMFIR_CONTINUE, "MAIL " .. from)
  end
  if not mt.test_option(conn, SMFIP_NORCPT) then
    for _, r in ipairs(rcpts) do
      check(mt.rcptto(conn, r) == nil, "rcptto failed")
      expect(conn, SMFIP_NR_RCPT, SMFIR_CONTINUE, "RCPT " .. r)
    end
  end
end

-- headers: list of {name, value}
function headers(conn, hdrs)
  if mt.test_option(conn, SMFIP_NOHDRS) then return end
  for _, h in ipairs(hdrs) do
    check(mt.header(conn, h[1], lead(conn) .. h[2]) == nil, "header failed")
    expect(conn, SMFIP_NR_HDR, SMFIR_CONTINUE, "header " .. h[1])
  end
  if not mt.test_option(conn, SMFIP_NOEOH) then
    check(mt.eoh(conn) == nil, "eoh failed")
    expect(conn, SMFIP_NR_EOH, SMFIR_CONTINUE, "EOH")
  end
end

function body(conn, chunks)
  if mt.test_option(conn, SMFIP_NOBODY) then return end
  for _, c in ipairs(chunks) do
    check(mt.bodystring(conn, c) == nil, "bodystring failed")
    if not mt.test_option(conn, SMFIP_NR_BODY) then
      local r = mt.getreply(conn)
      if r == SMFIR_SKIP then return "skip" end
      check(r == SMFIR_CONTINUE, "BODY: expected 'c', got '" .. ch(r) .. "'")
    end
  end
end

-- one whole message up to and including EOM; returns the final reply code
function message(conn, hdrs, chunks, from, rcpts)
  envelope(conn, from or "<sender@test.example>", rcpts or { "<rcpt@dest.example>" })
  headers(conn, hdrs)
  body(conn, chunks or { "body line\r\n" })
  check(mt.eom(conn) == nil, "eom failed")
  return mt.getreply(conn)
end

-- header added with VALUE, with or without the HDR_LEADSPC leading space
function hdradd(conn, name, value)
  return mt.eom_check(conn, MT_HDRADD, name, value) or
         mt.eom_check(conn, MT_HDRADD, name, " " .. value)
end

function reply_is(conn, want, what)
  local r = mt.getreply(conn)
  check(r == want, what .. ": expected '" .. ch(want) .. "', got '" .. ch(r) .. "'")
end

function run(name, fn)
  local ok, err = pcall(fn)
  if not ok then
    mt.echo("FAIL: " .. name .. ": " .. tostring(err))
    error(err)
  end
  mt.echo("PASS")
end
