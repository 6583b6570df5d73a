-- wrk script: GET /api_v2/directories/{id}. Env: BENCH_TOKEN, BENCH_PATH.
wrk.method = "GET"
wrk.path = os.getenv("BENCH_PATH")
wrk.headers["Authorization"] = "Bearer " .. (os.getenv("BENCH_TOKEN") or "")
