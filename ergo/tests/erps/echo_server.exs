# An Erps server of Elixir's Erps for ergo/tests/erps.rs: a call with any
# term T replies {echo, T}; a cast {push_back, T} pushes T to the client.
#
#   elixir -pa ERPS_BEAMS echo_server.exs tcp
#   elixir -pa ERPS_BEAMS echo_server.exs tls CA CERT KEY
#
# Prints "port N" once its daemon listens.
# TLS needs Erlang's ssl application running (Erps does not start it).
{:ok, _} = Application.ensure_all_started(:ssl)

defmodule EchoServer do
  use Erps.Server, safe: false

  def start_link(state, opts), do: Erps.Server.start_link(__MODULE__, state, opts)
  def init(state), do: {:ok, state}
  def handle_call(t, _from, state), do: {:reply, {:echo, t}, state}

  def handle_cast({:push_back, t}, state) do
    me = self()
    # A push is a call to the server itself: made from another process.
    spawn(fn -> Erps.Server.push(me, t) end)
    {:noreply, state}
  end
end

{transport, tls_opts} =
  case System.argv() do
    ["tcp"] -> {Transport.Tcp, []}
    ["tls", ca, cert, key] -> {Transport.Tls, [cacertfile: ca, certfile: cert, keyfile: key]}
  end

{:ok, sup} = DynamicSupervisor.start_link(strategy: :one_for_one)

{:ok, daemon} =
  Erps.Daemon.start_link(EchoServer, :ok,
    port: 0,
    server_supervisor: sup,
    transport: transport,
    tls_opts: tls_opts
  )

{:ok, port} = Erps.Daemon.port(daemon)
IO.puts("port #{port}")
Process.sleep(:infinity)
