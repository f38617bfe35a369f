-- wrk script: POST a realistic ticket (about 600 bytes of JSON) with a bearer
-- token taken from the TOKEN environment variable. With CHANNEL set, the
-- ticket comes in on that channel (and is routed by its rule).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("TOKEN") or "none")
local channel = os.getenv("CHANNEL")
local channel_field = ""
if channel and channel ~= "" then channel_field = [["channel_id":]] .. channel .. "," end
wrk.body = "{" .. channel_field .. [["subject":"Invoice charged twice this month","content":"Hello, I was charged twice for my subscription this month (invoice 2026-11-0042). Could you refund the duplicate charge? I attached the bank statement to my previous e-mail. Thanks a lot, Cleo","contact":{"email":"cleo.martin@customer.example","name":"Cleo Martin"},"priority":"high","properties":{"language":"fr","category":"billing","plan":"pro","order":"A-20931"}}]]

local non201 = 0
function response(status, headers, body)
  if status ~= 201 then non201 = non201 + 1 end
end
