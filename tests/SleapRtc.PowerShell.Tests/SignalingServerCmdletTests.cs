using System.Management.Automation;
using System.Net;
using System.Net.Sockets;

namespace SleapRtc.PowerShell.Tests;

public sealed class SignalingServerCmdletTests
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };

    [Fact]
    public async Task Start_on_an_ephemeral_port_lists_answers_health_and_stop_frees_the_port()
    {
        using var ps = new HostedPowerShell();
        var server = ps.Run("Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'").SingleOf("SleapRtc.SignalingServer");
        var port = (int)server.Prop("Port")!;
        Assert.InRange(port, 1, 65535);
        Assert.Equal("Running", server.Text("State"));
        Assert.Equal($"ws://127.0.0.1:{port}", server.Text("Url"));

        var listed = ps.Run("Get-SleapSignalingServer").SingleOf("SleapRtc.SignalingServer");
        Assert.Equal(server.Prop("InstanceId"), listed.Prop("InstanceId"));

        var health = await Http.GetAsync($"http://127.0.0.1:{port}/health");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);

        var stopped = ps.Run("Get-SleapSignalingServer | Stop-SleapSignalingServer -PassThru").SingleOf("SleapRtc.SignalingServer");
        Assert.Equal("Stopped", stopped.Text("State"));
        Assert.Empty(ps.Run("Get-SleapSignalingServer").ThrowOnError().Output);
        AssertPortFree(port);
    }

    [Fact]
    public void Stop_with_WhatIf_leaves_the_server_running()
    {
        using var ps = new HostedPowerShell();
        ps.Run("$s = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'").ThrowOnError();
        ps.Run("$s | Stop-SleapSignalingServer -WhatIf").ThrowOnError();
        Assert.Single(ps.Run("Get-SleapSignalingServer").ThrowOnError().Output);
    }

    [Fact]
    public void Stop_with_Confirm_asks_the_host_and_respects_a_no()
    {
        using var ps = new HostedPowerShell();
        ps.Run("$s = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'").ThrowOnError();
        ps.Host.TestUI.Answers.Enqueue("N");
        ps.Run("$s | Stop-SleapSignalingServer -Confirm").ThrowOnError();
        Assert.Contains(ps.Host.TestUI.PromptsShown, p => p.Contains("Stop signaling server"));
        Assert.Single(ps.Run("Get-SleapSignalingServer").ThrowOnError().Output);
        ps.Host.TestUI.Answers.Enqueue("Y");
        ps.Run("$s | Stop-SleapSignalingServer -Confirm").ThrowOnError();
        Assert.Empty(ps.Run("Get-SleapSignalingServer").ThrowOnError().Output);
    }

    [Fact]
    public void A_taken_port_is_a_clear_terminating_error()
    {
        using var blocker = new TcpListener(IPAddress.Loopback, 0);
        blocker.Start();
        var port = ((IPEndPoint)blocker.LocalEndpoint).Port;
        using var ps = new HostedPowerShell();
        var result = ps.Run($"Start-SleapSignalingServer -Port {port} -ListenAddress 127.0.0.1 -DatabasePath ':memory:'");
        var error = result.FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("SignalingServerStartFailed,", error!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceUnavailable, error.CategoryInfo.Category);
        Assert.Contains("-Port 0", error.ErrorDetails.RecommendedAction);
    }

    [Fact]
    public void Stopping_an_unknown_port_writes_a_non_terminating_error()
    {
        using var ps = new HostedPowerShell();
        var result = ps.Run("Stop-SleapSignalingServer -Port 1; 'still running'");
        Assert.Equal("still running", result.Output.Single().BaseObject);
        Assert.StartsWith("SignalingServerNotFound,", Assert.Single(result.Errors).FullyQualifiedErrorId);
    }

    [Fact]
    public void Wait_blocks_until_Ctrl_C_and_then_stops_the_server()
    {
        using var ps = new HostedPowerShell();
        using var running = ps.Start("Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:' -Wait");
        running.WaitUntil(r => r.Output.Count == 1, TimeSpan.FromSeconds(20), "the server object");
        var port = (int)running.Output[0].Prop("Port")!;
        Thread.Sleep(200);
        Assert.False(running.IsCompleted, "-Wait must keep the command running");

        var stopTook = running.Stop(TimeSpan.FromSeconds(10));
        Assert.True(stopTook < TimeSpan.FromSeconds(3), $"Ctrl+C took {stopTook.TotalMilliseconds} ms");
        AssertPortFree(port);
        Assert.Empty(ps.Run("Get-SleapSignalingServer").ThrowOnError().Output);
    }

    [Fact]
    public void Remove_Module_and_closing_the_session_stop_the_servers_it_started()
    {
        int port1, port2;
        using (var ps = new HostedPowerShell())
        {
            port1 = (int)ps.Run("Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'").SingleOf("SleapRtc.SignalingServer").Prop("Port")!;
            ps.Run("Remove-Module SleapRtc").ThrowOnError();
            AssertPortFree(port1);

            ps.Run($"Import-Module '{RepoPaths.Manifest}'").ThrowOnError();
            port2 = (int)ps.Run("Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'").SingleOf("SleapRtc.SignalingServer").Prop("Port")!;
        }
        AssertPortFree(port2);
    }

    [Fact]
    public void Servers_are_per_session()
    {
        using var first = new HostedPowerShell();
        using var second = new HostedPowerShell();
        first.Run("Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'").ThrowOnError();
        Assert.Empty(second.Run("Get-SleapSignalingServer").ThrowOnError().Output);
        Assert.Single(first.Run("Get-SleapSignalingServer").ThrowOnError().Output);
    }

    [Fact]
    public void Rooms_survive_a_restart_on_the_same_database_file()
    {
        var database = Path.Combine(TestEnvironment.DataDirectory, "restart-" + Guid.NewGuid().ToString("N") + ".db");
        using var ps = new HostedPowerShell();
        var room = ps.Run($"""
            $s = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath '{database}'
            New-SleapRoom -Server $s.Url -Name persisted
            $s | Stop-SleapSignalingServer
            """).SingleOf("SleapRtc.Room");
        var removed = ps.Run($"""
            $s = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath '{database}'
            Remove-SleapRoom -RoomId $roomId -Server $s.Url -Confirm:$false
            $s | Stop-SleapSignalingServer
            'removed'
            """, variables: new Dictionary<string, object?> { ["roomId"] = room.Text("RoomId") });
        // The room was found with its token after the restart: deletion succeeded without a RoomNotFound error.
        removed.ThrowOnError();
        Assert.Equal("removed", removed.Output.Single().BaseObject);
    }

    internal static void AssertPortFree(int port)
    {
        using var probe = new TcpListener(IPAddress.Loopback, port);
        probe.Start(); // throws when something still listens there
        probe.Stop();
    }
}
