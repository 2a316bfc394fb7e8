# The Elixir side of benches/gen_stage_vs_elixir.sh: the same GenStage
# workloads as benches/src/bin/gen_stage_side.rs, on Elixir's GenStage
# (compiled from ../shared/third_party/gen_stage, on the code path).
#
#   elixir ... gen_stage_bench.exs local SECS
#   elixir ... gen_stage_bench.exs buffer N
#   elixir --name p@127.0.0.1 ... gen_stage_bench.exs producer
#   elixir --name c@127.0.0.1 ... gen_stage_bench.exs consumer SECS PRODUCER_NODE LABEL
#
# Prints "name value unit" lines, as the Rust side does.

defmodule Bench.Numbers do
  use GenStage
  def init(_), do: {:producer, 0}

  def handle_demand(demand, n) do
    {:noreply, Enum.to_list(n..(n + demand - 1)), n + demand}
  end

  # {:emit, k}: k events beyond any demand (they go to the buffer).
  def handle_call({:emit, k}, _from, n) do
    {:reply, :ok, Enum.to_list(n..(n + k - 1)), n + k}
  end
end

defmodule Bench.Doubler do
  use GenStage
  def init(_), do: {:producer_consumer, :ok}
  def handle_events(events, _from, s), do: {:noreply, Enum.map(events, &(&1 * 2)), s}
end

defmodule Bench.Counter do
  use GenStage
  def init(counter), do: {:consumer, counter}

  def handle_events(events, _from, counter) do
    :counters.add(counter, 1, length(events))
    {:noreply, [], counter}
  end
end

defmodule Bench do
  # Events counted over `secs` seconds, after half a second of warm-up.
  def rate(counter, secs) do
    Process.sleep(500)
    c0 = :counters.get(counter, 1)
    t0 = System.monotonic_time(:nanosecond)
    Process.sleep(round(secs * 1000))
    c1 = :counters.get(counter, 1)
    t1 = System.monotonic_time(:nanosecond)
    (c1 - c0) / ((t1 - t0) / 1.0e9)
  end

  def opts, do: [max_demand: 1000]

  def main(["local", secs]) do
    counter = :counters.new(1, [])
    {:ok, p} = GenStage.start_link(Bench.Numbers, :ok)
    {:ok, pc} = GenStage.start_link(Bench.Doubler, :ok)
    {:ok, c} = GenStage.start_link(Bench.Counter, counter)
    {:ok, _} = GenStage.sync_subscribe(pc, [to: p] ++ opts())
    {:ok, _} = GenStage.sync_subscribe(c, [to: pc] ++ opts())
    r = rate(counter, String.to_float(secs))
    IO.puts("elixir_pipeline_events_s #{round(r)} events/s")
  end

  # Memory of a producer holding n events in its buffer (an unbounded
  # one), over n.
  def main(["buffer", n]) do
    n = String.to_integer(n)
    {:ok, p} = GenStage.start_link(Bench.BigBuffer, :ok)
    :erlang.garbage_collect(p)
    {:memory, m0} = Process.info(p, :memory)
    for _ <- 1..div(n, 1000), do: :ok = GenStage.call(p, {:emit, 1000})
    :erlang.garbage_collect(p)
    {:memory, m1} = Process.info(p, :memory)
    IO.puts("elixir_buffer_bytes_per_event #{Float.round((m1 - m0) / n, 1)} bytes")
  end

  def main(["producer"]) do
    {:ok, _} = GenStage.start_link(Bench.Numbers, :ok, name: :numbers)
    IO.puts("ready")
    Process.sleep(:infinity)
  end

  def main(["consumer", secs, node, label]) do
    node = String.to_atom(node)
    true = Node.connect(node)
    counter = :counters.new(1, [])
    {:ok, c} = GenStage.start_link(Bench.Counter, counter)
    {:ok, _} = GenStage.sync_subscribe(c, [to: {:numbers, node}] ++ opts())
    r = rate(counter, String.to_float(secs))
    IO.puts("#{label} #{round(r)} events/s")
  end
end

defmodule Bench.BigBuffer do
  use GenStage
  def init(_), do: {:producer, 0, buffer_size: :infinity}
  def handle_demand(_demand, n), do: {:noreply, [], n}

  def handle_call({:emit, k}, _from, n) do
    {:reply, :ok, Enum.to_list(n..(n + k - 1)), n + k}
  end
end

Bench.main(System.argv())
