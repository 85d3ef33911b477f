using System.Diagnostics;
using SleapRtc.WebRtc.PeerConnection;
using Xunit;
using Xunit.Abstractions;

namespace SleapRtc.WebRtc.Tests.PeerConnection;

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
