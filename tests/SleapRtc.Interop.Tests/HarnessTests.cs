using System.Diagnostics;
using SleapRtc.Interop;
using Xunit;

namespace SleapRtc.Interop.Tests;

/// <summary>The harness itself: missing fixtures fail fast with a clear message; the namespace is private.</summary>
public sealed class HarnessTests
{
    [Fact]
    public async Task A_missing_fixture_fails_fast_with_an_install_hint()
    {
        var missing = new FixtureCommand
        {
            Name = "nonexistent-peer",
            FileName = "/usr/bin/node",
            Arguments = new[] { "/nonexistent/peer.mjs" },
            RequiredPaths = new[] { "/nonexistent/peer.mjs" },
        };
        var clock = Stopwatch.StartNew();
        var error = await Assert.ThrowsAsync<FixtureUnavailableException>(() =>
            FixtureProcess.StartAsync("nonexistent-peer", missing, network: null, TimeSpan.FromSeconds(10)));
        Assert.Contains("nonexistent-peer", error.Message);
        Assert.Contains("install-deps", error.Message);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task A_fixture_that_dies_before_ready_reports_its_stderr()
    {
        var dying = new FixtureCommand
        {
            Name = "dying-peer",
            FileName = "/bin/sh",
            Arguments = new[] { "-c", "echo 'engine exploded' >&2; exit 3" },
        };
        var error = await Assert.ThrowsAsync<FixtureUnavailableException>(() =>
            FixtureProcess.StartAsync("dying-peer", dying, network: null, TimeSpan.FromSeconds(10)));
        Assert.Contains("engine exploded", error.Message);
    }

    [Fact]
    public async Task The_namespace_has_only_loopback_and_the_test_veth_pair()
    {
        await using var network = await NetworkNamespace.CreateAsync(TimeSpan.FromSeconds(10));
        var (file, args) = network.Wrap(new FixtureCommand { Name = "ip", FileName = "/usr/sbin/ip", Arguments = new[] { "-br", "-4", "addr" } });
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var process = Process.Start(info)!;
        var text = await process.StandardOutput.ReadToEndAsync().WaitAsync(TimeSpan.FromSeconds(10));
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(10));
        var names = text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(' ', 2)[0].Split('@')[0]).Order().ToArray();
        Assert.Equal(new[] { "lo", "v0", "v1" }, names);
        Assert.Contains("10.99.0.1", text);
    }
}
