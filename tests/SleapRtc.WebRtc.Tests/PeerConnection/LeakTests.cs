using System.Diagnostics;
using SleapRtc.WebRtc.PeerConnection;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.PeerConnection;

/// <summary>
/// The leak tests count the whole process's descriptors and threads, so they must not share the process with
/// tests running in parallel (other classes open sockets, timers and python pipes meanwhile): this collection
/// runs alone, after the parallel ones.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideCountingCollection
{
    public const string Name = "process-wide descriptor and thread counts";
}

[Collection(ProcessWideCountingCollection.Name)]
public class LeakTests(ITestOutputHelper output)
{
    private static int OpenFileDescriptors() => Directory.GetFiles("/proc/self/fd").Length;

    private static int Threads()
    {
        using var process = Process.GetCurrentProcess();
        return process.Threads.Count;
    }

    /// <summary>Sockets, threads and timers of every layer are released: 200 connect/dispose cycles leave no growth.</summary>
    [Fact]
    public async Task Repeated_connect_and_dispose_releases_sockets_and_threads()
    {
        var cycles = int.TryParse(Environment.GetEnvironmentVariable("SLEAPRTC_LEAK_CYCLES"), out var n) ? n : 200;
        var factory = new RtcPeerConnectionFactory();
        // Warm up JIT, thread pool and the certificate so the baseline is fair.
        for (var i = 0; i < 3; i++) await using (await PeerPair.ConnectAsync(factory)) { }
        await Task.Delay(200);
        var fdBefore = OperatingSystem.IsLinux() ? OpenFileDescriptors() : 0;
        var threadsBefore = Threads();
        var stopwatch = Stopwatch.StartNew();
        for (var i = 0; i < cycles; i++)
        {
            var pair = await PeerPair.ConnectAsync(factory);
            pair.OffererChannel.Send("ping");
            await pair.DisposeAsync();
            Assert.Equal(PeerConnectionState.Closed, pair.Offerer.State);
            Assert.Equal(PeerConnectionState.Closed, pair.Answerer.State);
        }
        var elapsed = stopwatch.Elapsed;
        // Thread-pool threads retire lazily; give dedicated threads a moment to finish joining.
        await Task.Delay(500);
        var fdAfter = OperatingSystem.IsLinux() ? OpenFileDescriptors() : 0;
        var threadsAfter = Threads();
        output.WriteLine($"{cycles} cycles in {elapsed.TotalSeconds:F1} s; fds {fdBefore} -> {fdAfter}; threads {threadsBefore} -> {threadsAfter}");
        Assert.InRange(fdAfter, 0, fdBefore + 4);
        // Each live connection holds at least 4 dedicated threads; a leak of even one per cycle would show as +200.
        Assert.InRange(threadsAfter, 0, threadsBefore + 12);
    }
}

[Collection(ProcessWideCountingCollection.Name)]
public class EarlyDisposeTests
{
    [Fact]
    public async Task Disposing_before_or_during_connection_setup_releases_everything()
    {
        var factory = new RtcPeerConnectionFactory(new RtcPeerConnectionSettings { IceConnectTimeout = TimeSpan.FromSeconds(30) });
        var fdBefore = 0;
        for (var i = 0; i < 21; i++)
        {
            // The first round warms up runtime-wide descriptors (epoll, timers) before the baseline.
            if (i == 1) fdBefore = Directory.GetFiles("/proc/self/fd").Length;
            // Offer made, never answered.
            var lonely = factory.CreateConnection(PeerPair.LoopbackOptions);
            await lonely.CreateOfferAsync(default);
            await lonely.DisposeAsync();
            Assert.Equal(PeerConnectionState.Closed, lonely.State);

            // Answer made to an offer whose peer is gone: checks run against a dead port, then dispose.
            var ghost = factory.CreateConnection(PeerPair.LoopbackOptions);
            var offer = await ghost.CreateOfferAsync(default);
            await ghost.DisposeAsync();
            var answerer = factory.CreateConnection(PeerPair.LoopbackOptions);
            await answerer.AcceptOfferAsync(offer, default);
            Assert.Equal(PeerConnectionState.Connecting, answerer.State);
            var stopwatch = System.Diagnostics.Stopwatch.StartNew();
            await answerer.DisposeAsync();
            Assert.True(stopwatch.Elapsed < TimeSpan.FromSeconds(3), $"dispose took {stopwatch.ElapsedMilliseconds} ms");
            Assert.Equal(PeerConnectionState.Closed, answerer.State);
        }
        await Task.Delay(300);
        Assert.InRange(Directory.GetFiles("/proc/self/fd").Length, 0, fdBefore + 4);
    }
}
