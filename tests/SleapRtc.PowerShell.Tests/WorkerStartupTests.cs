using System.Management.Automation;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// What Start-SleapWorker tells the person starting it: the GPU it found (or why not), a banner fit for a service
/// journal under -Wait, one room per machine by default, and nothing left behind in the temp directory.
/// </summary>
public sealed class WorkerStartupTests : IDisposable
{
    private readonly HostedPowerShell _ps = new();
    private readonly string _work = TestEnvironment.NewDirectory("startup");

    public WorkerStartupTests()
    {
        _ps.Run($"""
            $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
            $room = New-SleapRoom -Server $server.Url
            $smi = '{TestEnvironment.Fixture("nvidia-smi")}'
            $nn = '{TestEnvironment.Fixture("sleap-nn")}'
            """).ThrowOnError();
    }

    public void Dispose() => _ps.Dispose();

    private ScriptResult Start(string parameters) =>
        _ps.Run($"Start-SleapWorker {parameters} -SleapNnPath $nn -WorkingDirectory '{_work}'");

    [Fact]
    public void A_GpuId_the_box_does_not_have_is_a_GpuNotFound_error_and_no_worker_starts()
    {
        var result = Start($"-RoomId $room.RoomId -GpuId 7 -NvidiaSmiPath '{TestEnvironment.Fixture("nvidia-smi-one-gpu")}'");
        var error = result.FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("GpuNotFound,", error!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
        Assert.Contains("GPU 7 does not exist", error.ErrorDetails.Message);
        Assert.Contains("GPU 0 (NVIDIA GeForce RTX 3060, 12288 MB)", error.ErrorDetails.Message);
        Assert.Empty(result.Output);
        Assert.Empty(_ps.Run("Get-SleapWorker -Local").ThrowOnError().Output);
        Assert.Empty(_ps.Run("Get-SleapWorker -RoomId $room.RoomId -Status *").ThrowOnError().Output);
    }

    [Theory]
    [InlineData("nvidia-smi-driver-failure", "exited with code 9: NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver")]
    [InlineData(null, "nvidia-smi was not found (tried the path given, '/nonexistent/nvidia-smi')")]
    public void Falling_back_to_the_cpu_is_a_warning_that_names_nvidia_smi_and_what_was_tried(string? fixture, string expected)
    {
        var smi = fixture is null ? "/nonexistent/nvidia-smi" : TestEnvironment.Fixture(fixture);
        var result = Start($"-RoomId $room.RoomId -NvidiaSmiPath '{smi}'").ThrowOnError();
        var session = result.SingleOf("SleapRtc.WorkerSession");
        Assert.Equal(("CPU", 0L), (session.Text("GpuModel"), (long)session.Prop("GpuMemoryMB")!));
        var warning = Assert.Single(result.Warnings, w => w.Contains("nvidia-smi"));
        Assert.Contains(expected, warning);
        Assert.Contains("CPU with 0 MB", warning);
    }

    [Fact]
    public void GpuId_completes_with_the_gpus_nvidia_smi_lists()
    {
        var text = $"Start-SleapWorker -NvidiaSmiPath '{TestEnvironment.Fixture("nvidia-smi")}' -GpuId ";
        var matches = _ps.Run("[System.Management.Automation.CommandCompletion]::CompleteInput($text, $text.Length, $null).CompletionMatches",
            variables: new Dictionary<string, object?> { ["text"] = text }).ThrowOnError().Output.Select(o => (CompletionResult)o.BaseObject).ToList();
        Assert.Equal(new[] { "0", "1", "2", "all" }, matches.Select(m => m.CompletionText));
        Assert.Equal("GPU 1: NVIDIA RTX A6000 (49140 MB)", matches[1].ToolTip);

        var broken = $"Start-SleapWorker -NvidiaSmiPath '{TestEnvironment.Fixture("nvidia-smi-driver-failure")}' -GpuId ";
        Assert.Empty(_ps.Run("[System.Management.Automation.CommandCompletion]::CompleteInput($text, $text.Length, $null).CompletionMatches",
            variables: new Dictionary<string, object?> { ["text"] = broken }).ThrowOnError().Output);
    }

    [Fact]
    public void Under_Wait_the_banner_masks_the_token_and_the_session_string_and_says_how_to_get_them()
    {
        using var running = _ps.Start($"$room | Start-SleapWorker -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory '{_work}' -Wait");
        // By index: enumerating a live PSDataCollection blocks until the pipeline ends.
        static IEnumerable<T> SoFar<T>(PSDataCollection<T> stream) => Enumerable.Range(0, stream.Count).Select(i => stream[i]).ToList();
        running.WaitUntil(r => SoFar(r.Streams.Information).Any(i => i.MessageData.ToString()!.Contains("$w.SessionString")), TimeSpan.FromSeconds(30), "the banner");
        var session = SoFar(running.Output).Single(o => o.BaseObject.GetType().FullName == "SleapRtc.WorkerSession");
        running.Stop(TimeSpan.FromSeconds(40));

        var token = session.Text("Token")!;
        var sessionString = session.Text("SessionString")!;
        var logged = string.Join("\n", running.Streams.Information.Select(i => i.MessageData.ToString())
            .Concat(running.Streams.Verbose.Select(v => v.Message)).Concat(running.Streams.Warning.Select(w => w.Message)));
        Assert.DoesNotContain(token, logged);
        Assert.DoesNotContain(sessionString["sleap-session:".Length..], logged);
        Assert.Contains("Room ID: " + session.Text("RoomId"), logged);
        Assert.Contains("Token:   " + token[..4] + "********", logged);
        Assert.Contains("sleap-session:********", logged);
        // Where an admin finds them: the saved credentials (this account only) or the object of an interactive start.
        Assert.Contains(Path.Combine(TestEnvironment.DataDirectory, "credentials.json"), logged);
        Assert.Contains("$w.SessionString", logged);
    }

    [Fact]
    public void Without_Wait_the_banner_shows_the_seeds_copyable_credentials()
    {
        var result = _ps.Run($"$room | Start-SleapWorker -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory '{_work}'").ThrowOnError();
        var session = result.SingleOf("SleapRtc.WorkerSession");
        var banner = string.Join("\n", result.Information.Select(i => i.MessageData.ToString()));
        Assert.Contains("  " + session.Text("SessionString"), banner);
        Assert.Contains("  Token:   " + session.Text("Token"), banner);
        Assert.Contains("Use the room credentials with -RoomId and -Token for worker discovery", banner);
    }

    [Fact]
    public void GpuId_all_starts_one_worker_per_gpu_of_one_machine_and_Stop_SleapWorker_stops_them()
    {
        var result = Start("-RoomId $room.RoomId -GpuId all -NvidiaSmiPath $smi").ThrowOnError();
        var sessions = result.Output.Where(o => o.TypeNames.Contains("SleapRtc.WorkerSession")).ToList();

        Assert.Equal(new[] { 0, 1, 2 }, sessions.Select(s => (int)s.Prop("GpuId")!));
        Assert.Equal(3, sessions.Select(s => s.Text("PeerId")).Distinct().Count());
        var workers = _ps.Run("Get-SleapWorker -RoomId $room.RoomId -Status *").ThrowOnError().Output;
        Assert.Equal(3, workers.Count); // one WorkerInfo per worker
        Assert.All(workers, w => Assert.Equal(Environment.MachineName, ((System.Collections.IDictionary)w.Prop("Properties")!)["machine_id"]?.ToString()));

        _ps.Run("Get-SleapWorker -Local | Stop-SleapWorker").ThrowOnError();
        Assert.Empty(_ps.Run("Get-SleapWorker -Local").ThrowOnError().Output);
        Assert.Empty(_ps.Run("Get-SleapWorker -RoomId $room.RoomId -Status *").ThrowOnError().Output);
    }

    [Fact]
    public void GpuId_all_on_a_machine_without_gpus_starts_one_cpu_worker_and_a_list_is_GpuNotFound()
    {
        var cpu = Start("-RoomId $room.RoomId -GpuId all -NvidiaSmiPath /nonexistent/nvidia-smi").ThrowOnError();
        Assert.Equal("CPU", cpu.SingleOf("SleapRtc.WorkerSession").Text("GpuModel"));
        Assert.Contains(cpu.Warnings, w => w.Contains("-GpuId all") && w.Contains("one worker starts on the CPU"));
        _ps.Run("Get-SleapWorker -Local | Stop-SleapWorker").ThrowOnError();

        var list = Start("-RoomId $room.RoomId -GpuId 0,1 -NvidiaSmiPath /nonexistent/nvidia-smi");
        Assert.StartsWith("GpuNotFound,", list.FirstError!.FullyQualifiedErrorId);
        Assert.Empty(list.Output);
        Assert.Empty(_ps.Run("Get-SleapWorker -Local").ThrowOnError().Output);
    }

    [Fact]
    public void A_second_worker_without_server_or_room_joins_the_first_workers_room_and_server()
    {
        var first = Start("-GpuId 0 -NvidiaSmiPath $smi").ThrowOnError().SingleOf("SleapRtc.WorkerSession");
        var second = Start("-GpuId 1 -NvidiaSmiPath $smi").ThrowOnError();
        var session = second.SingleOf("SleapRtc.WorkerSession");

        Assert.Equal(first.Text("RoomId"), session.Text("RoomId"));
        Assert.Equal(first.Text("Server"), session.Text("Server"));
        Assert.Contains(second.Information, i => i.MessageData.ToString()!.Contains($"Joining room {first.Text("RoomId")}"));
        var workers = _ps.Run("Get-SleapWorker -RoomId $id", variables: new Dictionary<string, object?> { ["id"] = first.Text("RoomId") }).ThrowOnError().Output;
        Assert.Equal(new[] { 24564L, 49140L }, workers.Select(w => (long)w.Prop("GpuMemoryMB")!).OrderBy(m => m));
    }

    [Fact]
    public void A_worker_without_WorkingDirectory_leaves_no_folder_in_the_temp_directory()
    {
        var session = _ps.Run("$room | Start-SleapWorker -NvidiaSmiPath $smi -SleapNnPath $nn").ThrowOnError().SingleOf("SleapRtc.WorkerSession");
        var folder = Path.Combine(Path.GetTempPath(), "SleapRtc", "worker-" + session.Text("PeerId"));
        var package = TestEnvironment.BuildPackage(_work, "temp-folder", ("config.json", 1));
        var trained = _ps.Run($"Submit-SleapTraining -PackagePath '{package}' -SessionString $w.SessionString -OutputPath '{Path.Combine(_work, "out")}'",
            TimeSpan.FromSeconds(90), new Dictionary<string, object?> { ["w"] = session.BaseObject }).SingleOf("SleapRtc.TrainingResult");
        Assert.Equal("Succeeded", trained.Text("Status"));

        _ps.Run("Get-SleapWorker -Local | Stop-SleapWorker").ThrowOnError();
        Assert.False(Directory.Exists(folder), folder + " is left behind");
    }
}
