# Elixir stages for ergo/tests/gen_stage_elixir.rs: real GenStage 1.3.2
# stages that the test drives from an `erl` shell against the Rust stages
# of the interop_node example. Every function here is called from the
# shell, so `ErgoTest.collect/3` and the others receive in the shell's
# mailbox. Stages are started unlinked (`GenStage.start/3`): a stage that
# stops must not take the shell with it.

defmodule ErgoTest.Producer do
  @moduledoc false
  # A producer of `from`, `from + 1`, … (integers) as demanded.
  #
  # Options: `name:` (registers it), `dispatcher:` (`:demand`, the
  # default; `:broadcast`; `:partition`, with partitions `[0, 1]` and the
  # default hash `:erlang.phash2(event, 2)`), `from:` (0), `limit:`
  # (`:infinity`; otherwise it emits the events below `limit` only) and
  # `stop:` (a reason: once demand goes beyond `limit`, it emits what is
  # left below `limit` and then stops with that reason, mid-stream),
  # `demand:` (`:accumulate` to start with demand held back, as
  # `GenStage.demand/2` sets) and `notify:` (a pid told
  # `{:consumer_subscribed, self(), opts}` as each consumer subscribes,
  # with the options that consumer sent).
  use GenStage

  def start(opts), do: GenStage.start(__MODULE__, opts, Keyword.take(opts, [:name]))

  @impl true
  def init(opts) do
    dispatcher =
      case Keyword.get(opts, :dispatcher, :demand) do
        :demand -> GenStage.DemandDispatcher
        :broadcast -> GenStage.BroadcastDispatcher
        :partition -> {GenStage.PartitionDispatcher, partitions: [0, 1]}
      end

    state = %{
      next: Keyword.get(opts, :from, 0),
      limit: Keyword.get(opts, :limit, :infinity),
      stop: Keyword.get(opts, :stop),
      notify: Keyword.get(opts, :notify)
    }

    {:producer, state, dispatcher: dispatcher, demand: Keyword.get(opts, :demand, :forward)}
  end

  @impl true
  def handle_subscribe(:consumer, opts, _from, state) do
    if state.notify, do: send(state.notify, {:consumer_subscribed, self(), opts})
    {:automatic, state}
  end

  @impl true
  def handle_demand(demand, %{next: next, limit: :infinity} = state) do
    {:noreply, Enum.to_list(next..(next + demand - 1)//1), %{state | next: next + demand}}
  end

  def handle_demand(demand, %{next: next, limit: limit, stop: stop} = state) do
    last = min(next + demand, limit)

    if next + demand > limit and stop != nil do
      # Stops once the events below are on their way.
      send(self(), :stop_now)
    end

    {:noreply, Enum.to_list(next..(last - 1)//1), %{state | next: last}}
  end

  @impl true
  def handle_info(:stop_now, state), do: {:stop, state.stop, state}

  @impl true
  def handle_call({:stop, reason}, _from, state), do: {:stop, reason, :ok, state}
end

defmodule ErgoTest.Consumer do
  @moduledoc false
  # A consumer that forwards to the test process `to:` what it gets:
  # `{:subscribed, self(), from}`, `{:events, self(), events}` and
  # `{:cancel, self(), {kind, reason}}` (its handle_cancel's argument).
  #
  # Options: `to:` (required), `name:`, `manual:` (true: the subscription
  # is in manual demand, and the message `{:ask, n}` makes it ask its
  # producer for `n` events with `GenStage.ask/2`).
  use GenStage

  def start(opts), do: GenStage.start(__MODULE__, opts, Keyword.take(opts, [:name]))

  @impl true
  def init(opts) do
    {:consumer, %{to: Keyword.fetch!(opts, :to), manual: Keyword.get(opts, :manual, false), from: nil}}
  end

  @impl true
  def handle_subscribe(:producer, _opts, from, state) do
    send(state.to, {:subscribed, self(), from})
    mode = if state.manual, do: :manual, else: :automatic
    {mode, %{state | from: from}}
  end

  @impl true
  def handle_events(events, _from, state) do
    send(state.to, {:events, self(), events})
    {:noreply, [], state}
  end

  @impl true
  def handle_cancel(reason, _from, state) do
    send(state.to, {:cancel, self(), reason})
    {:noreply, [], state}
  end

  @impl true
  def handle_info({:ask, n}, state) do
    GenStage.ask(state.from, n)
    {:noreply, [], state}
  end
end

defmodule ErgoTest.ProducerConsumer do
  @moduledoc false
  # A producer_consumer emitting each event times `factor:` (3 by
  # default), demand dispatcher. Options: `name:`, `factor:`.
  use GenStage

  def start(opts), do: GenStage.start(__MODULE__, opts, Keyword.take(opts, [:name]))

  @impl true
  def init(opts), do: {:producer_consumer, Keyword.get(opts, :factor, 3)}

  @impl true
  def handle_events(events, _from, factor), do: {:noreply, Enum.map(events, &(&1 * factor)), factor}
end

defmodule ErgoTest do
  @moduledoc false
  # What the shell (the test process) runs to read what ErgoTest.Consumer
  # forwards to it.

  @doc """
  The next `n` events consumer `pid` forwards, in order of arrival:
  `{:ok, events}`, or `{:timeout, events_so_far}` when nothing came for
  `timeout` ms. Events of the last batch beyond `n` are kept for the next
  call.
  """
  def collect(pid, n, timeout \\ 5000) do
    {events, rest} = take(Process.delete({:ergo_rest, pid}) || [], pid, n, timeout)
    if rest != [], do: Process.put({:ergo_rest, pid}, rest)
    if length(events) >= n, do: {:ok, events}, else: {:timeout, events}
  end

  defp take(acc, pid, n, timeout) when length(acc) < n do
    receive do
      {:events, ^pid, events} -> take(acc ++ events, pid, n, timeout)
    after
      timeout -> {acc, []}
    end
  end

  defp take(acc, _pid, n, _timeout), do: Enum.split(acc, n)

  @doc "The events consumer `pid` forwards within `ms` ms, kept ones first (none expected: `[]`)."
  def more(pid, ms), do: (Process.delete({:ergo_rest, pid}) || []) ++ more_events(pid, ms)

  defp more_events(pid, ms) do
    receive do
      {:events, ^pid, events} -> events ++ more_events(pid, ms)
    after
      ms -> []
    end
  end

  @doc "Calls `fun` until it returns `expected` or `timeout` ms have passed; its last value."
  def eventually(fun, expected, timeout \\ 5000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    poll(fun, expected, deadline)
  end

  defp poll(fun, expected, deadline) do
    case fun.() do
      ^expected ->
        expected

      other ->
        if System.monotonic_time(:millisecond) > deadline do
          other
        else
          Process.sleep(20)
          poll(fun, expected, deadline)
        end
    end
  end

  @doc "The next `{kind, reason}` consumer `pid`'s handle_cancel got, or `:timeout`."
  def cancel(pid, timeout \\ 5000) do
    receive do
      {:cancel, ^pid, reason} -> reason
    after
      timeout -> :timeout
    end
  end

  @doc "The `from` of consumer `pid`'s next subscription, or `:timeout`."
  def subscribed(pid, timeout \\ 5000) do
    receive do
      {:subscribed, ^pid, from} -> from
    after
      timeout -> :timeout
    end
  end

  @doc "The options of the next consumer to subscribe to producer `pid` (its `notify:`), or `:timeout`."
  def consumer_subscribed(pid, timeout \\ 5000) do
    receive do
      {:consumer_subscribed, ^pid, opts} -> opts
    after
      timeout -> :timeout
    end
  end

  @doc """
  Calls `server` with `:events` (the Rust `sink`) until it answers a list
  of at least `n` events or `timeout` ms have passed; the last answer.
  """
  def events(server, n, timeout \\ 5000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    poll_events(server, n, deadline)
  end

  defp poll_events(server, n, deadline) do
    events = GenServer.call(server, :events)

    if length(events) >= n or System.monotonic_time(:millisecond) > deadline do
      events
    else
      Process.sleep(20)
      poll_events(server, n, deadline)
    end
  end

  @doc "The next GenStage message (`:\"$gen_consumer\"` or `:\"$gen_producer\"`) to this process, or `:timeout`."
  def next_wire(timeout \\ 5000) do
    receive do
      {:"$gen_consumer", _, _} = msg -> msg
      {:"$gen_producer", _, _} = msg -> msg
    after
      timeout -> :timeout
    end
  end

  @doc "The reason of the `:DOWN` of monitor `ref`, or `:timeout`."
  def down(ref, timeout \\ 5000) do
    receive do
      {:DOWN, ^ref, :process, _, reason} -> reason
    after
      timeout -> :timeout
    end
  end
end
