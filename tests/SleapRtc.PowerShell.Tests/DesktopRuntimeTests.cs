using Xunit.Abstractions;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// The Windows PowerShell 5.1 side of the module, as far as this Linux box can run it: the netstandard2.0 builds of
/// every library, resolved from bin/desktop by the cmdlet assembly's own resolver, on Mono (.NET Framework's API
/// twin). They train end to end on their own and interoperate with the PowerShell 7 (net8.0) builds both ways.
/// </summary>
public sealed class DesktopRuntimeTests(ITestOutputHelper output) : IDisposable
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(120);
    /// <summary>16 MB by default; SLEAPRTC_DESKTOP_PACKAGE_MB=256 turns the cross-runtime tests into a throughput measurement.</summary>
    private static readonly int PackageBytes = (int.TryParse(Environment.GetEnvironmentVariable("SLEAPRTC_DESKTOP_PACKAGE_MB"), out var mb) ? mb : 16) << 20;
    private readonly string _work = TestEnvironment.NewDirectory("desktop");

    public void Dispose() { }

    [Fact]
    public void The_netstandard_builds_serve_a_room_train_and_return_models_on_the_framework_runtime()
    {
        var package = TestEnvironment.BuildPackage(_work, "desktop", ("config.json", 2));
        using var program = DesktopProgram.Start("all-in-one", _work, package, TestEnvironment.Fixture("sleap-nn"));
        Assert.StartsWith("Mono", program.WaitFor("RUNTIME", Timeout));
        AssertDesktopBuild(program.WaitFor("LIBRARY", Timeout));
        var result = program.WaitFor("RESULT", Timeout);
        Assert.StartsWith("Succeeded ", result);
        Assert.Contains(" files=", result);
        Assert.DoesNotContain(" files=0", result);
        Assert.Equal(0, program.Finish(Timeout));
        Assert.True(File.Exists(Path.Combine(_work, "rooms.db")), "the SQLite room store was not written");
    }

    [Fact]
    public void A_framework_client_trains_on_a_PowerShell_7_worker()
    {
        using var ps = new HostedPowerShell();
        var session = ps.Run($"""
            $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
            $room = New-SleapRoom -Server $server.Url
            $room | Start-SleapWorker -NvidiaSmiPath '{TestEnvironment.Fixture("nvidia-smi")}' -SleapNnPath '{TestEnvironment.Fixture("sleap-nn")}' -WorkingDirectory '{_work}'
            """).ThrowOnError().SingleOf("SleapRtc.WorkerSession");
        // Megabytes, not kilobytes: SCTP windows, retransmission timers and the table CRC32c carry real traffic.
        var package = TestEnvironment.BuildPackage(_work, "to-core", PackageBytes, ("config.json", 2));
        var models = Path.Combine(_work, "models");

        using var program = DesktopProgram.Start("submit", session.Text("SessionString")!, package, models);
        AssertDesktopBuild(program.WaitFor("LIBRARY", Timeout));
        output.WriteLine($"framework client -> PowerShell 7 worker, {PackageBytes >> 20} MB: {program.WaitFor("UPLOAD", Timeout)}");
        var result = program.WaitFor("RESULT", Timeout);
        Assert.StartsWith("Succeeded worker=" + session.Text("PeerId"), result);
        Assert.Contains($" uploaded={new FileInfo(package).Length} ", result);
        Assert.Equal(0, program.Finish(Timeout));
        Assert.NotEmpty(Directory.GetFiles(models, "*", SearchOption.AllDirectories));
    }

    [Fact]
    public void A_PowerShell_7_client_trains_on_a_framework_worker()
    {
        using var ps = new HostedPowerShell();
        var url = ps.Run("(Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:').Url").ThrowOnError().Single<string>();
        using var program = DesktopProgram.Start("worker", url, _work, TestEnvironment.Fixture("sleap-nn"));
        AssertDesktopBuild(program.WaitFor("LIBRARY", Timeout));
        var sessionString = program.WaitFor("SESSION", Timeout);

        var package = TestEnvironment.BuildPackage(_work, "to-desktop", PackageBytes, ("config.json", 2));
        var models = Path.Combine(_work, "core-models");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var training = ps.Run($"Submit-SleapTraining -PackagePath '{package}' -SessionString $s -OutputPath '{models}'", Timeout,
            new Dictionary<string, object?> { ["s"] = sessionString }).ThrowOnError().SingleOf("SleapRtc.TrainingResult");
        output.WriteLine($"PowerShell 7 client -> framework worker, {PackageBytes >> 20} MB: submission done in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.Equal("Succeeded", training.Text("Status"));
        Assert.NotEmpty(Directory.GetFiles(models, "*", SearchOption.AllDirectories));
        Assert.Equal(0, program.Finish(Timeout));
        Assert.Contains("STOPPED", program.Output);
    }

    private static void AssertDesktopBuild(string library)
    {
        Assert.Contains(".NETStandard,Version=v2.0", library);
        Assert.Contains(Path.Combine(RepoPaths.Root, "bin", "desktop") + Path.DirectorySeparatorChar, library);
    }
}
