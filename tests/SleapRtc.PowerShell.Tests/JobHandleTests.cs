namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// Job handles in one session against a real server and worker (stand-in trainer): -NoWait returns once the worker
/// has the package, the trainer overrides reach sleap-nn, Wait-SleapJob and Get-SleapJob follow the record,
/// Receive-SleapJob collects the models into a folder of their own (once), and -ResumeFrom sends a checkpoint the
/// trainer resumes from.
/// </summary>
public sealed class JobHandleTests : IDisposable
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromSeconds(120);
    private readonly HostedPowerShell _ps = new();
    private readonly string _work = TestEnvironment.NewDirectory("handles");

    public JobHandleTests()
    {
        _ps.Run($$"""
            $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
            $room = New-SleapRoom -Server $server.Url
            $worker = $room | Start-SleapWorker -GpuId 0 -NvidiaSmiPath '{{TestEnvironment.Fixture("nvidia-smi")}}' -SleapNnPath '{{TestEnvironment.Fixture("sleap-nn")}}' -WorkingDirectory '{{_work}}'
            $c = @{ RoomId = $room.RoomId; Token = $room.Token; Server = $server.Url }
            """).ThrowOnError();
    }

    public void Dispose() => _ps.Dispose();

    private static Dictionary<string, string?> TrainingArgs(string modelsFolder)
    {
        var file = Directory.GetFiles(modelsFolder, "training_args.json", SearchOption.AllDirectories).Single();
        using var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(file));
        return json.RootElement.EnumerateObject().ToDictionary(p => p.Name, p => p.Value.ValueKind == System.Text.Json.JsonValueKind.Null ? null : p.Value.ToString());
    }

    [Fact]
    public void NoWait_returns_the_handle_and_the_overrides_reach_the_trainer_then_Receive_collects_once()
    {
        var package = TestEnvironment.BuildPackage(Path.Combine(_work, "p"), "labels.v001", ("config.json", 2));
        var notHere = Path.Combine(_work, "nowait-out");
        var handle = _ps.Run($"Submit-SleapTraining -PackagePath '{package}' @c -WorkerId $worker.PeerId -NoWait -OutputPath '{notHere}' -MaxEpochs 4 -BatchSize 8 -LearningRate 0.0005 -RunName nightly_1",
            JobTimeout).ThrowOnError().SingleOf("SleapRtc.JobInfo");
        var jobId = (string)handle.Properties["JobId"].Value;
        Assert.Matches("^job_[0-9a-f]{12}$", jobId);
        Assert.Equal("Running", handle.Properties["State"].Value);
        // Nothing came back to this machine: -NoWait left before the training.
        Assert.False(Directory.Exists(notHere));

        var done = _ps.Run($"Wait-SleapJob -JobId {jobId} @c -Timeout 90", JobTimeout).ThrowOnError().SingleOf("SleapRtc.JobInfo");
        Assert.Equal("Succeeded", done.Properties["State"].Value);
        Assert.True((bool)done.Properties["ResultsAvailable"].Value);
        var overrides = _ps.Run($"(Get-SleapJob {jobId} @c).Overrides.GetEnumerator() | Sort-Object Key | ForEach-Object {{ '{{0}}={{1}}' -f $_.Key, $_.Value }}")
            .ThrowOnError().Output.Select(o => o.ToString()).ToArray();
        Assert.Equal(new[] { "BatchSize=8", "LearningRate=0.0005", "MaxEpochs=4", "RunName=nightly_1" }, overrides);

        var output = Path.Combine(_work, "collected");
        var result = _ps.Run($"Get-SleapJob {jobId} @c | Receive-SleapJob -OutputPath '{output}'", JobTimeout).ThrowOnError().SingleOf("SleapRtc.TrainingResult");
        var folder = (string)result.Properties["OutputPath"].Value;
        Assert.StartsWith(Path.Combine(output, "labels.v001-"), folder);
        Assert.EndsWith(jobId.Substring(4, 8), folder);
        var args = TrainingArgs(folder);
        Assert.Equal("4", args["epochs"]);
        Assert.Equal("8", args["batch_size"]);
        Assert.Equal("0.0005", args["learning_rate"]);
        Assert.Equal("nightly_1", args["run_name"]);

        // Collected once: the worker deleted its copy, so a second collection has nothing to fetch.
        var deadline = DateTime.UtcNow.AddSeconds(15);
        while (_ps.Run($"(Get-SleapJob {jobId} @c).ResultsAvailable").Single<bool>() && DateTime.UtcNow < deadline) Thread.Sleep(200);
        var again = _ps.Run($"Receive-SleapJob {jobId} @c -OutputPath '{output}'", JobTimeout);
        Assert.StartsWith("JobResultsUnavailable,", again.FirstError?.FullyQualifiedErrorId);
        Assert.Single(Directory.GetDirectories(output));
    }

    [Fact]
    public void ResumeFrom_sends_the_checkpoint_folder_and_the_trainer_resumes_from_its_best_ckpt()
    {
        var package = TestEnvironment.BuildPackage(Path.Combine(_work, "r"), "resume", ("config.json", 2));
        var first = _ps.Run($"Submit-SleapTraining -PackagePath '{package}' @c -WorkerId $worker.PeerId -OutputPath '{Path.Combine(_work, "first")}'", JobTimeout)
            .ThrowOnError().SingleOf("SleapRtc.TrainingResult");
        var checkpoint = Directory.GetFiles((string)first.Properties["OutputPath"].Value, "best.ckpt", SearchOption.AllDirectories).Single();
        _ps.Run("while ((Get-SleapWorker @c -Status *).Status -ne 'available') { Start-Sleep -Milliseconds 200 }", JobTimeout).ThrowOnError();

        var second = _ps.Run($"Submit-SleapTraining -PackagePath '{package}' @c -WorkerId $worker.PeerId -ResumeFrom '{Path.GetDirectoryName(checkpoint)}' -OutputPath '{Path.Combine(_work, "second")}'",
            JobTimeout).ThrowOnError().SingleOf("SleapRtc.TrainingResult");
        Assert.Equal("Succeeded", second.Properties["Status"].Value);
        var args = TrainingArgs((string)second.Properties["OutputPath"].Value);
        Assert.EndsWith("best.ckpt", args["resume_ckpt_path"]);
        Assert.Equal(File.ReadAllText(checkpoint), args["resume_content"]);
    }
}
