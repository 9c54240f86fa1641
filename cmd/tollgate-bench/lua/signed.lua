-- POST a fixed body to the path given after "--", signed per request with the
-- seed scheme (X-Timestamp, X-Nonce, X-Signature = hex HMAC-SHA256 of
-- method ‖ target ‖ body ‖ timestamp ‖ nonce). Every request has its own
-- nonce, as a replay cache demands. HMAC comes from the libcrypto wrk is
-- linked with, through LuaJIT's FFI, so signing costs the client microseconds.
-- Arguments: path, API key, signing secret, body size, run ID.
local ffi = require("ffi")
ffi.cdef[[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *out, unsigned int *out_len);
]]
-- libcrypto's symbols: wrk's own (linked dynamically, as Debian's is), else
-- the library by name.
local crypto
for _, try in ipairs({
  function() ffi.C.EVP_sha256(); return ffi.C end,
  function() return ffi.load("crypto") end,
  function() return ffi.load("libcrypto.so.3") end,
}) do
  local ok, lib = pcall(try)
  if ok then crypto = lib; break end
end
assert(crypto, "libcrypto not found: the signed workload needs OpenSSL's libcrypto")

local counter = 0
local path, key, secret, body, run, sha256
local out = ffi.new("unsigned char[32]")
local outlen = ffi.new("unsigned int[1]")
local hexdigits = {}
for i = 0, 255 do hexdigits[i] = string.format("%02x", i) end

local threads = 0
setup = function(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

init = function(args)
  path, key, secret = args[1], args[2], args[3]
  body = string.rep("x", tonumber(args[4]))
  run = args[5]
  sha256 = crypto.EVP_sha256()
end

local function hmac_hex(msg)
  crypto.HMAC(sha256, secret, #secret, msg, #msg, out, outlen)
  local t = {}
  for i = 0, 31 do t[i + 1] = hexdigits[out[i]] end
  return table.concat(t)
end

request = function()
  counter = counter + 1
  local ts = tostring(os.time())
  local nonce = string.format("%s-%d-%d", run, tid, counter)
  local sig = hmac_hex("POST" .. path .. body .. ts .. nonce)
  return wrk.format("POST", path, {
    ["X-API-KEY"] = key, ["X-Timestamp"] = ts, ["X-Nonce"] = nonce,
    ["X-Signature"] = sig, ["Content-Type"] = "application/octet-stream",
  }, body)
end
