namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// Test-SleapConnection through the public cmdlets against a real server (its own STUN responder on its port) and a real
/// worker over real WebRTC: every step reported, the round trip over the host path with the channel authenticated,
/// -Quiet as a pre-flight answer, and the view within 80 columns.
/// </summary>
public sealed class ConnectionTestCmdletTests : IDisposable
{
    private static readonly TimeSpan TestTimeout = TimeSpan.FromSeconds(60);
    private readonly HostedPowerShell _ps = new(consoleWidth: 80);
    private readonly string _work = TestEnvironment.NewDirectory("conntest");

    public ConnectionTestCmdletTests()
    {
        _ps.Run($"""
            $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
            $room = New-SleapRoom -Server $server.Url
            $worker = $room | Start-SleapWorker -NvidiaSmiPath '{TestEnvironment.Fixture("nvidia-smi")}' -SleapNnPath '{TestEnvironment.Fixture("sleap-nn")}' -WorkingDirectory '{_work}'
            """).ThrowOnError();
    }

    public void Dispose() => _ps.Dispose();

    [Fact]
    public void A_worker_in_reach_passes_every_step_and_the_result_says_how()
    {
        var run = _ps.Run("Get-SleapWorker -RoomId $room.RoomId | Test-SleapConnection", TestTimeout);
        run.ThrowOnError();
        var result = run.SingleOf("SleapRtc.ConnectionTestResult");
        var steps = ((System.Collections.IEnumerable)result.Prop("Steps")!).Cast<object>().Select(s => new System.Management.Automation.PSObject(s)).ToList();
        Assert.Equal(new[] { "Server", "Stun", "Turn", "Worker" }, steps.Select(s => s.Text("Name")));
        Assert.Equal(new[] { "Passed", "Passed", "NotConfigured", "Passed" }, steps.Select(s => s.Text("Status")));
        Assert.Equal(true, result.Prop("Succeeded"));
        Assert.NotNull(result.Prop("ServerLatency"));
        // The server's own STUN answers on its port: it sees this machine at its loopback address.
        Assert.StartsWith("127.0.0.1:", Assert.Single((string[])result.Prop("ReflexiveAddresses")!));
        Assert.Contains("no NAT", steps[1].Text("Detail"));
        Assert.Contains("-TurnUrl", steps[2].Text("Detail"));
        Assert.Equal("host", result.Text("Path"));
        Assert.Equal("Verified", result.Text("ChannelAuth"));
        Assert.True((TimeSpan)result.Prop("RoundTrip")! < TimeSpan.FromSeconds(1));
        Assert.Contains("channel authenticated", steps[3].Text("Detail"));

        // Nothing was reserved and no job was recorded.
        var after = _ps.Run("$worker.Status; @(Get-SleapJob -RoomId $room.RoomId).Count");
        after.ThrowOnError();
        Assert.Equal("available", after.Output[0].ToString());
        Assert.Equal("0", after.Output[1].ToString());
    }

    [Fact]
    public void Quiet_answers_true_or_false_for_scripts()
    {
        var good = _ps.Run("Test-SleapConnection -SessionString $worker.SessionString -Quiet", TestTimeout);
        good.ThrowOnError();
        Assert.True(good.Single<bool>());
        var wrong = _ps.Run("Test-SleapConnection -RoomId $room.RoomId -Token 'not-the-token' -Server $server.Url -Quiet", TestTimeout);
        Assert.Empty(wrong.Errors);
        Assert.False(wrong.Single<bool>());
        // -Server takes a list of instances as on every room cmdlet: a dead first one (a port just freed) fails over.
        var failover = _ps.Run("""
            $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0); $listener.Start()
            $dead = "ws://127.0.0.1:$($listener.LocalEndpoint.Port)"; $listener.Stop()
            Test-SleapConnection -RoomId $room.RoomId -Token $room.Token -Server $dead, $server.Url -Quiet
            """, TestTimeout);
        failover.ThrowOnError();
        Assert.True(failover.Single<bool>());
        var gone = _ps.Run("Test-SleapConnection -RoomId $room.RoomId -WorkerId 'no-such-worker'", TestTimeout);
        gone.ThrowOnError();
        var result = gone.SingleOf("SleapRtc.ConnectionTestResult");
        Assert.Equal(false, result.Prop("Succeeded"));
    }

    [Fact]
    public void The_view_fits_80_columns()
    {
        _ps.Run("Test-SleapConnection -SessionString $worker.SessionString | Out-Host; (Test-SleapConnection -RoomId $room.RoomId).Steps | Out-Host", TestTimeout).ThrowOnError();
        var transcript = System.Text.RegularExpressions.Regex.Replace(_ps.Host.TestUI.Transcript, "\u001b\\[[0-9;]*m", "");
        // From the first view on (the worker's start-up banner above it is not ours).
        var text = transcript.Substring(transcript.IndexOf("Succeeded", StringComparison.Ordinal));
        Assert.Contains("RoundTrip", text);
        Assert.Contains("Detail", text);
        Assert.Contains("NotConfigured", text);
        Assert.All(text.Split('\n'), line => Assert.True(line.TrimEnd('\r').Length <= 80, $"{line.Length} columns: {line}"));
    }
}
