# The Elixir side of benches/erps_vs_elixir.sh: sequential calls from
# Elixir's Erps.Client to a server for SECS seconds; prints the mean round
# trip.
#
#   elixir -pa ERPS_BEAMS erps_bench.exs PORT SECS LABEL [CA CERT KEY]
{:ok, _} = Application.ensure_all_started(:ssl)

defmodule BenchClient do
  use Erps.Client, safe: false
  def init(s), do: {:ok, s}
end

[port, secs, label | tls] = System.argv()

{transport, tls_opts} =
  case tls do
    [] -> {Transport.Tcp, []}
    [ca, cert, key] -> {Transport.Tls, [cacertfile: ca, certfile: cert, keyfile: key]}
  end

{:ok, c} =
  Erps.Client.start_link(BenchClient, :ok,
    server: "127.0.0.1",
    port: String.to_integer(port),
    transport: transport,
    tls_opts: tls_opts
  )

wait = fn wait, tries ->
  case GenServer.call(c, :ping, 5000) do
    :disconnected when tries > 0 -> Process.sleep(50); wait.(wait, tries - 1)
    _ -> :ok
  end
end

:ok = wait.(wait, 100)
deadline = System.monotonic_time(:microsecond) + round(String.to_float(secs) * 1.0e6)
t0 = System.monotonic_time(:microsecond)

loop = fn loop, n ->
  {:echo, :ping} = GenServer.call(c, :ping, 5000)
  if System.monotonic_time(:microsecond) < deadline, do: loop.(loop, n + 1), else: n + 1
end

n = loop.(loop, 0)
t1 = System.monotonic_time(:microsecond)
IO.puts("#{label} #{Float.round((t1 - t0) / n, 1)} us/call")
