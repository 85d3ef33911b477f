using SleapRtc.TurnLab;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// The TURN lab (bench/TurnBench, tests/interop/turn-topology.sh): client and worker in namespaces that cannot reach each
/// other, coturn and the signaling server (-TurnUrl/-TurnSecret) in between, the worker and clients in their own processes
/// taking the TURN servers and credentials the signaling server hands out. Root and coturn are installed in CI.
/// </summary>
public sealed class TurnLabFixture : IAsyncLifetime
{
    public TurnTopology Lab { get; private set; } = null!;
    public string Package { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Lab = await TurnTopology.StartAsync("turnt" + Environment.ProcessId % 100000,
            $"turn:{TurnTopology.Middle}:3478,turn:{TurnTopology.Middle}:3478?transport=tcp");
        Package = Lab.Package(0.5);
    }

    public async Task DisposeAsync() => await Lab.DisposeAsync();
}

public sealed class TurnTopologyTests(TurnLabFixture fixture) : IClassFixture<TurnLabFixture>
{
    private static readonly TimeSpan JobWait = TimeSpan.FromSeconds(60);
    private TurnTopology Lab => fixture.Lab;

    private string[] OneJob(string netns, string? turnUrl = null)
    {
        using var client = Lab.Client(netns, fixture.Package, 1, turnUrl);
        var line = client.WaitFor("JOB", JobWait);
        var fields = line.Split(' ', 4);
        Assert.True(fields[0] == "Succeeded", $"{line}\n{client.Transcript()}");
        return fields;
    }

    [Fact]
    public void A_training_job_with_no_direct_path_completes_through_coturn_over_udp_and_both_ends_say_so()
    {
        var pair = OneJob(Lab.ClientNamespace)[3];
        // One end's relayed candidate carries it; which one depends on which check answered first.
        Assert.Contains("relay 10.77.1.1:", pair);
        Assert.DoesNotContain("(turn tcp)", pair);
        var workerSide = Lab.Worker.WaitFor("PATH", TimeSpan.FromSeconds(10));
        Assert.Contains("relay 10.77.1.1:", workerSide);
    }

    [Fact]
    public void With_no_udp_path_at_all_the_job_goes_through_coturn_over_tcp()
    {
        var pair = OneJob(Lab.TcpOnlyNamespace)[3];
        Assert.StartsWith("relay 10.77.1.1:", pair);
        Assert.Contains("(turn tcp)", pair);
    }

    [Fact]
    public void With_no_udp_path_at_all_the_job_goes_through_coturn_over_tls_trusting_the_lab_ca()
    {
        var pair = OneJob(Lab.TcpOnlyNamespace, $"turns:{TurnTopology.Middle}:{Lab.Coturn.TlsPort}")[3];
        Assert.StartsWith("relay 10.77.1.1:", pair);
        Assert.Contains("(turn tls)", pair);
    }

    [Fact]
    public void Wrong_turn_credentials_fail_the_submission_with_the_turn_servers_reason()
    {
        var url = $"turn:{TurnTopology.Middle}:{Lab.Coturn.Port}?transport=tcp";
        using var client = Lab.Client(Lab.TcpOnlyNamespace, fixture.Package, 1, url, turnSecret: "not-the-lab-secret");
        var line = client.WaitFor("ERROR", JobWait);
        Assert.StartsWith("WorkerUnreachableException", line);
        Assert.Contains("ICE found no working candidate pair", line);
        Assert.Contains($"TURN server {url}", line);
        Assert.Contains("username or password is wrong", line);
        Assert.DoesNotContain("not-the-lab-secret", line);
    }
}
