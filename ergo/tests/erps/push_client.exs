# An Erps client of Elixir's Erps for ergo/tests/erps.rs: calls ping,
# prints the reply (~w), casts {push_back, hello}, prints what is pushed.
#
#   elixir -pa ERPS_BEAMS push_client.exs PORT tcp
#   elixir -pa ERPS_BEAMS push_client.exs PORT tls CA CERT KEY
# TLS needs Erlang's ssl application running (Erps does not start it).
{:ok, _} = Application.ensure_all_started(:ssl)

defmodule PushClient do
  use Erps.Client, safe: false

  def init(parent), do: {:ok, parent}

  def handle_push(pushed, parent) do
    send(parent, {:pushed, pushed})
    {:noreply, parent}
  end
end

[port | how] = System.argv()

{transport, tls_opts} =
  case how do
    ["tcp"] -> {Transport.Tcp, []}
    ["tls", ca, cert, key] -> {Transport.Tls, [cacertfile: ca, certfile: cert, keyfile: key]}
  end

{:ok, client} =
  Erps.Client.start_link(PushClient, self(),
    server: "127.0.0.1",
    port: String.to_integer(port),
    transport: transport,
    tls_opts: tls_opts
  )

# Calls answer :disconnected until the connection is up.
call = fn call, tries ->
  case GenServer.call(client, :ping, 5000) do
    :disconnected when tries > 0 -> Process.sleep(50); call.(call, tries - 1)
    reply -> reply
  end
end

:io.format("~w~n", [call.(call, 100)])
GenServer.cast(client, {:push_back, :hello})

receive do
  {:pushed, pushed} -> :io.format("~w~n", [pushed])
after
  5000 -> IO.puts("nothing pushed"); System.halt(1)
end
