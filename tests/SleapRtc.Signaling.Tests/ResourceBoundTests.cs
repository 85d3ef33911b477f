using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.Signaling.Tests;

/// <summary>
/// Issue 11, item 2: what one connection can make the server hold. Echoes are truncated, each connection's queue is
/// bounded in bytes, a connection that does not read is dropped (queue over the bound, or a send stalled), a flood
/// of messages that are not signaling messages closes the connection, and connections per address are capped.
/// </summary>
[Collection(MemoryMeasuringCollection.Name)]
public class ResourceBoundTests(ITestOutputHelper output)
{
    private static Task WaitUntilAsync(Func<bool> condition) => Wire.WaitUntilAsync(condition);

    [Fact]
    public async Task Two_non_reading_floods_of_one_megabyte_unknown_types_are_dropped_and_memory_stays_bounded()
    {
        await using var server = await TestServer.StartAsync();
        var baseline = MemoryProbe.SettledHeap();
        var baselineRss = Environment.WorkingSet;
        using var probe = new MemoryProbe();

        // {"type": "ZZZ…"} of 1 MB (just under MaxMessageBytes), 300 times, from two connections that never read.
        var flood = Encoding.UTF8.GetBytes("{\"type\": \"" + new string('Z', 1024 * 1024 - 64) + "\"}");
        var timer = Stopwatch.StartNew();
        var sent = await Task.WhenAll(Enumerable.Range(0, 2).Select(async _ =>
        {
            using var socket = new ClientWebSocket();
            await socket.ConnectAsync(new Uri(server.WsUrl), CancellationToken.None);
            var count = 0;
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                for (; count < 300; count++) await socket.SendAsync(flood, WebSocketMessageType.Text, true, timeout.Token);
            }
            catch (Exception e) when (e is WebSocketException or IOException or OperationCanceledException) { }
            socket.Abort();
            return count;
        }));
        var floodSeconds = timer.Elapsed.TotalSeconds;
        await WaitUntilAsync(() => server.Host.OpenConnections == 0);
        var peakHeap = probe.PeakHeap;
        var peakRss = probe.PeakRss;
        var after = MemoryProbe.SettledHeap();
        output.WriteLine($"flood: {sent[0]} and {sent[1]} of 300 messages accepted in {floodSeconds:F1} s; managed heap {Mb(baseline)} MB before, " +
                         $"peak {Mb(peakHeap)} MB, {Mb(after)} MB after close; RSS {Mb(baselineRss)} MB before, peak {Mb(peakRss)} MB, {Mb(Environment.WorkingSet)} MB after");

        // Dropped: the server closed both connections long before 300 messages (the malformed-message allowance).
        Assert.All(sent, count => Assert.True(count < 300, $"a flooding connection sent all {count} messages"));
        // Bounded: the peak includes this test's own two 1 MB frames and the parser's transient copies; before the
        // fix every message queued a 2 MB echo (600 MB per connection).
        Assert.True(peakHeap - baseline < 200L * 1024 * 1024, $"managed heap grew by {Mb(peakHeap - baseline)} MB during the flood");
        // Returned: after close the heap is back within a few MB of where it started.
        Assert.True(after - baseline < 24L * 1024 * 1024, $"managed heap is {Mb(after - baseline)} MB above its baseline after close");
    }

    private static long Mb(long bytes) => bytes / (1024 * 1024);

    [Fact]
    public async Task Error_answers_echo_at_most_64_characters_of_what_they_were_sent()
    {
        await using var server = await TestServer.StartAsync();
        var (roomId, token) = await server.NewRoomAsync();
        await using var peer = await server.JoinAsync(roomId, token, "client");
        var huge = new string('Q', 100_000);

        await peer.SendAsync($$"""{"type": "{{huge}}"}""");
        var unknown = await peer.ReceiveAsync("error");
        Assert.Equal("UNKNOWN_MESSAGE_TYPE", (string?)unknown["code"]);
        Assert.True(unknown.ToJsonString().Length < 400, unknown.ToJsonString().Length + " characters");

        await peer.SendAsync($$"""{"type": "offer", "target": "{{huge}}", "sdp": "x"}""");
        var notFound = await peer.ReceiveAsync("error");
        Assert.Equal("PEER_NOT_FOUND", (string?)notFound["code"]);
        Assert.True(notFound.ToJsonString().Length < 400, notFound.ToJsonString().Length + " characters");

        await peer.SendAsync($$"""{"type": "mesh_connect", "target_peer_id": "{{huge}}", "offer": {} }""");
        Assert.True((await peer.ReceiveAsync("error")).ToJsonString().Length < 400);
    }

    [Fact]
    public async Task Malformed_messages_beyond_the_allowance_close_the_connection_but_requests_of_known_types_do_not()
    {
        await using var server = await TestServer.StartAsync(o => o.MalformedMessageAllowance = 5);
        await using var peer = await RawPeer.ConnectAsync(server.WsUrl);
        // Known types answered with an error (not registered) are requests, not garbage: no limit beyond the throttles.
        for (var i = 0; i < 20; i++)
        {
            await peer.SendAsync("""{"type": "discover_peers"}""");
            Assert.Equal("NOT_IN_ROOM", (string?)(await peer.ReceiveAsync("error"))["code"]);
        }
        for (var i = 0; i < 5; i++)
        {
            await peer.SendAsync(i % 2 == 0 ? "{nope" : """{"type": "nope"}""");
            await peer.ReceiveAsync("error");
        }
        await peer.SendAsync("[]");
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await peer.ReceiveCloseAsync());
    }

    [Fact]
    public async Task A_registered_peer_that_stops_reading_is_dropped_once_its_queue_passes_the_byte_bound()
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.MaxQueuedBytesPerConnection = 1024 * 1024;
            o.SendStallTimeout = TimeSpan.FromMinutes(5);
        });
        var (roomId, token) = await server.NewRoomAsync();
        await using var sender = await server.JoinAsync(roomId, token, "client");
        await using var deaf = await server.JoinAsync(roomId, token, "worker");
        var payload = new string('p', 500_000);
        var timer = Stopwatch.StartNew();
        var deliveryFailed = false;
        // 100 × 500 kB = 50 MB, far beyond what the socket buffers hold; the queue's byte bound must drop the reader.
        for (var i = 0; i < 100 && server.Host.Peers.Get(deaf.PeerId) is not null; i++)
            await sender.SendAsync($$"""{"type": "peer_message", "to_peer_id": "{{deaf.PeerId}}", "payload": {"blob": "{{payload}}"} }""");
        await WaitUntilAsync(() => server.Host.Peers.Get(deaf.PeerId) is null);
        output.WriteLine($"non-reader dropped after {timer.ElapsedMilliseconds} ms");
        await sender.SendAsync($$"""{"type": "discover_peers", "from_peer_id": "{{sender.PeerId}}"}""");
        while (true)
        {
            var reply = await sender.ReceiveAsync();
            if ((string?)reply["type"] == "peer_list") break;
            deliveryFailed |= (string?)reply["code"] is "DELIVERY_FAILED" or "PEER_NOT_FOUND";
        }
        Assert.True(deliveryFailed, "the sender must learn that its messages could not be delivered");
    }

    [Fact]
    public async Task A_send_that_stalls_drops_the_connection()
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.MaxQueuedBytesPerConnection = 1L << 30;
            o.SendStallTimeout = TimeSpan.FromSeconds(1);
        });
        var (roomId, token) = await server.NewRoomAsync();
        await using var sender = await server.JoinAsync(roomId, token, "client");
        await using var deaf = await server.JoinAsync(roomId, token, "worker");
        var payload = new string('s', 500_000);
        // 60 × 500 kB fills the socket buffers (a few MB on loopback); the next send stalls and the peer is dropped.
        for (var i = 0; i < 60 && server.Host.Peers.Get(deaf.PeerId) is not null; i++)
            await sender.SendAsync($$"""{"type": "peer_message", "to_peer_id": "{{deaf.PeerId}}", "payload": {"blob": "{{payload}}"} }""");
        await WaitUntilAsync(() => server.Host.Peers.Get(deaf.PeerId) is null);
    }

    [Fact]
    public async Task Connections_from_one_address_are_capped_and_the_slot_comes_back_on_close()
    {
        await using var server = await TestServer.StartAsync(o =>
        {
            o.MaxConnectionsPerAddress = 4;
            o.ExemptLoopbackFromConnectionCap = false;
        });
        var open = new List<RawPeer>();
        try
        {
            for (var i = 0; i < 4; i++) open.Add(await RawPeer.ConnectAsync(server.WsUrl));
            await Assert.ThrowsAnyAsync<WebSocketException>(() => RawPeer.ConnectAsync(server.WsUrl));
            using (var http = new HttpClient())
            using (var refused = await http.GetAsync(server.Http.BaseAddress + "health"))
                Assert.Equal(503, (int)refused.StatusCode);

            await open[0].DisposeAsync();
            open.RemoveAt(0);
            await WaitUntilAsync(() => server.Host.ConnectionsPerAddress.OpenFrom("127.0.0.1") < 4);
            open.Add(await RawPeer.ConnectAsync(server.WsUrl));
        }
        finally
        {
            foreach (var peer in open) await peer.DisposeAsync();
        }
    }
}

/// <summary>Tests that measure the process's memory run one at a time, so one test's allocations do not show in another's figures.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MemoryMeasuringCollection
{
    public const string Name = "Memory-measuring tests";
}

/// <summary>Samples the managed heap and the resident set every 20 ms while alive; keeps the peaks. The heap is
/// sampled twice: as it stands (garbage not yet collected included) and as the last collection left it (what was
/// still reachable then, the figure that shows what the server holds on to).</summary>
public sealed class MemoryProbe : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _sampler;
    private long _peakHeap;
    private long _peakHeapAfterGc;
    private long _peakRss;

    public MemoryProbe()
    {
        _sampler = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Sample();
                try { await Task.Delay(20, _stop.Token); }
                catch (OperationCanceledException) { }
            }
        });
    }

    public long PeakHeap { get { Sample(); return Interlocked.Read(ref _peakHeap); } }
    public long PeakHeapAfterGc { get { Sample(); return Interlocked.Read(ref _peakHeapAfterGc); } }
    public long PeakRss { get { Sample(); return Interlocked.Read(ref _peakRss); } }

    /// <summary>The managed heap after full, compacting collections (the large-object heap included).</summary>
    public static long SettledHeap()
    {
        System.Runtime.GCSettings.LargeObjectHeapCompactionMode = System.Runtime.GCLargeObjectHeapCompactionMode.CompactOnce;
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        GC.WaitForPendingFinalizers();
        GC.Collect(GC.MaxGeneration, GCCollectionMode.Forced, blocking: true, compacting: true);
        return GC.GetTotalMemory(false);
    }

    private void Sample()
    {
        Raise(ref _peakHeap, GC.GetTotalMemory(false));
        Raise(ref _peakHeapAfterGc, GC.GetGCMemoryInfo().HeapSizeBytes);
        Raise(ref _peakRss, Environment.WorkingSet);
    }

    private static void Raise(ref long peak, long value)
    {
        long seen;
        while (value > (seen = Interlocked.Read(ref peak)) && Interlocked.CompareExchange(ref peak, value, seen) != seen) { }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _sampler.Wait(TimeSpan.FromSeconds(1));
        _stop.Dispose();
    }
}
