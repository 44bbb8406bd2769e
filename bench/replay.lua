-- wrk replay of pre-built webhooks (bench/wrk.py writes the file and runs wrk).
-- The file has one request per line: the path, one space, the JSON body (which holds no
-- newline). Thread n of N posts the lines OFFSET + n, OFFSET + n + N, ... and starts over at
-- the top of its share when it runs out.
--   wrk -t N -c16 -d10s -s replay.lua http://127.0.0.1:PORT -- FILE OFFSET N

local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
end

function init(args)
   local file, offset = args[1], tonumber(args[2] or "0")
   local nthreads = tonumber(args[3] or "1")
   paths, bodies = {}, {}
   local index = 0
   for line in io.lines(file) do
      if index >= offset and (index - offset) % nthreads == id then
         local space = line:find(" ", 1, true)
         table.insert(paths, line:sub(1, space - 1))
         table.insert(bodies, line:sub(space + 1))
      end
      index = index + 1
   end
   position = 0
   headers = {["Content-Type"] = "application/json"}
end

function request()
   position = position % #paths + 1
   return wrk.format("POST", paths[position], headers, bodies[position])
end

function done(summary, latency, requests)
   local non2xx = summary.errors.status
   io.write(string.format(
      "remixq-wrk requests=%d duration_us=%d p50_us=%d p99_us=%d p999_us=%d max_us=%d " ..
      "non2xx=%d connect=%d read=%d write=%d timeout=%d\n",
      summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
      latency:percentile(99.9), latency.max, non2xx, summary.errors.connect,
      summary.errors.read, summary.errors.write, summary.errors.timeout))
end
