using System.Management.Automation;
using System.Text.Json;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// Submit-SleapInference through the public cmdlets: real server, real worker running the stand-in tracker
/// (tests/fixtures/sleap-nn track), real WebRTC. The stand-in's predictions file records its inputs.
/// </summary>
public sealed class InferenceCmdletTests : IDisposable
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromSeconds(90);
    private readonly HostedPowerShell _ps = new();
    private readonly string _work = TestEnvironment.NewDirectory("inference");

    public InferenceCmdletTests()
    {
        _ps.Run($"""
            $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
            $room = New-SleapRoom -Server $server.Url
            $worker = $room | Start-SleapWorker -NvidiaSmiPath '{TestEnvironment.Fixture("nvidia-smi")}' -SleapNnPath '{TestEnvironment.Fixture("sleap-nn")}' -WorkingDirectory '{_work}'
            $video = [System.IO.Path]::Combine('{_work}', 'session2.mp4')
            [System.IO.File]::WriteAllBytes($video, [byte[]](1..200))
            """).ThrowOnError();
    }

    public void Dispose() => _ps.Dispose();

    [Fact]
    public void A_training_result_pipes_its_models_into_inference_and_progress_shows_frames()
    {
        var package = TestEnvironment.BuildPackage(_work, "labels.v001", ("centroid.json", 1));
        var result = _ps.Run($"""
            Submit-SleapTraining -PackagePath '{package}' -SessionString $worker.SessionString -OutputPath '{Path.Combine(_work, "models")}' |
                Submit-SleapInference -DataPath $video -SessionString $worker.SessionString -OutputPath '{Path.Combine(_work, "predictions")}' -BatchSize 2 -Verbose
            """, JobTimeout);
        result.ThrowOnError();
        var inference = result.SingleOf("SleapRtc.InferenceResult");
        Assert.Equal("Succeeded", inference.Text("Status"));
        Assert.Equal(20, (int)inference.Prop("Frames")!);
        Assert.Equal(40, (int)inference.Prop("Instances")!);
        var path = inference.Text("PredictionsPath")!;
        Assert.Equal(Path.Combine(_work, "predictions", "session2.predictions.slp"), path);
        var predictions = JsonDocument.Parse(File.ReadAllText(path)).RootElement;
        // The models are the training's run folder: the stand-in trainer named it after the config.
        Assert.Equal(new[] { "centroid" }, predictions.GetProperty("models").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("2", predictions.GetProperty("batch_size").GetString());
        Assert.Contains(result.Progress, p => p.Activity == "Submit-SleapInference" && p.StatusDescription == "Inferring"
            && p.CurrentOperation.StartsWith("20 of 20 frames at ") && p.PercentComplete == 100);
        Assert.Contains(result.Progress, p => p.Activity == "Submit-SleapInference" && p.RecordType == ProgressRecordType.Completed);
        Assert.Contains(result.Verbose, l => l.Contains("Predicted 40 instances in 20 frames"));
    }

    [Fact]
    public void Queue_waits_in_the_rooms_queue_and_the_inference_job_record_follows_it()
    {
        var result = _ps.Run($"""
            $model = [System.IO.Directory]::CreateDirectory([System.IO.Path]::Combine('{_work}', 'queued-model', 'centroid')).FullName
            [System.IO.File]::WriteAllText([System.IO.Path]::Combine($model, 'best.ckpt'), 'ckpt')
            $r = Submit-SleapInference -ModelPath $model -DataPath $video -RoomId $room.RoomId -Token $room.Token -Server $server.Url -Queue -Priority 7 -Tag sleap-rtc -OutputPath '{Path.Combine(_work, "queued")}'
            $r
            Get-SleapJob -JobId $r.JobId -RoomId $room.RoomId -Token $room.Token -Server $server.Url
            Submit-SleapInference -ModelPath $model -DataPath $video -RoomId $room.RoomId -Token $room.Token -Server $server.Url -Priority 7 -ErrorAction SilentlyContinue -ErrorVariable refused
            $refused[0].FullyQualifiedErrorId
            """, JobTimeout);
        PSObject Of(string type) => Assert.Single(result.Output, o => o.BaseObject.GetType().FullName == type);
        var inference = Of("SleapRtc.InferenceResult");
        Assert.Equal("Succeeded", inference.Text("Status"));
        Assert.True(File.Exists(inference.Text("PredictionsPath")));
        var record = Of("SleapRtc.JobInfo");
        Assert.Equal((inference.Text("JobId"), "Succeeded", "track", 7), (record.Text("JobId"), record.Text("State"), record.Text("Kind"), (int)record.Prop("Priority")!));
        Assert.Equal(inference.Text("WorkerId"), record.Text("WorkerId"));
        Assert.Contains(result.Information, i => i.MessageData?.ToString()?.Contains("Queued as job " + inference.Text("JobId")) == true);
        Assert.Contains(result.Output, o => o.BaseObject is string id && id.StartsWith("QueueOptionWithoutQueue,"));
    }

    [Fact]
    public void A_failing_inference_is_an_InferenceJobFailed_error_record_and_AsJob_reports_it_too()
    {
        _ps.Run($"""
            $bad = [System.IO.Path]::Combine('{_work}', 'bad.mp4')
            [System.IO.File]::WriteAllText($bad, 'STANDIN-FAIL')
            $model = [System.IO.Directory]::CreateDirectory([System.IO.Path]::Combine('{_work}', 'model-a')).FullName
            """).ThrowOnError();
        var failed = _ps.Run($"Submit-SleapInference -DataPath $bad -ModelPath $model -SessionString $worker.SessionString -OutputPath '{_work}' -Verbose", JobTimeout);
        var error = Assert.Single(failed.Errors);
        Assert.Equal("InferenceJobFailed", error.FullyQualifiedErrorId.Split(',')[0]);
        Assert.Contains(failed.Verbose, l => l.Contains("could not read the video"));

        var job = _ps.Run("""
            $job = Submit-SleapInference -DataPath $bad -ModelPath $model -SessionString $worker.SessionString -AsJob
            $null = Wait-Job $job -Timeout 80
            $job.State.ToString()
            $job.PSJobTypeName
            $job.ChildJobs.Count
            $job.ChildJobs[0].Error | ForEach-Object { $_.FullyQualifiedErrorId }
            """, JobTimeout).ThrowOnError();
        Assert.Equal(new[] { "Failed", "SleapInferenceJob", "1" }, job.Output.Take(3).Select(o => o.ToString()));
        Assert.StartsWith("InferenceJobFailed", job.Output[3].ToString());
    }

    [Fact]
    public void Missing_data_is_an_error_record_that_names_the_file()
    {
        var result = _ps.Run("Submit-SleapInference -DataPath ./nope.mp4 -ModelPath ./nope -SessionString $worker.SessionString");
        var error = Assert.Single(result.Errors);
        Assert.Equal("InferenceInputNotFound", error.FullyQualifiedErrorId.Split(',')[0]);
        Assert.Contains("nope.mp4", error.Exception.Message);
    }

    [Fact]
    public void A_space_is_served_listed_used_and_its_name_defended()
    {
        var result = _ps.Run($"""
            $models = [System.IO.Directory]::CreateDirectory([System.IO.Path]::Combine('{_work}', 'space-models', 'centroid')).FullName
            $space = $room | Start-SleapWorker -Space mice -ModelPath $models -NvidiaSmiPath '{TestEnvironment.Fixture("nvidia-smi")}' -SleapNnPath '{TestEnvironment.Fixture("sleap-nn")}' -WorkingDirectory '{_work}'
            $space.Space
            Get-SleapSpace -RoomId $room.RoomId
            Submit-SleapInference -Space mice -DataPath $video -RoomId $room.RoomId -OutputPath '{Path.Combine(_work, "space-out")}'
            """, JobTimeout).ThrowOnError();
        Assert.Equal("mice", result.Output[0].ToString());
        PSObject Only(string type) => Assert.Single(result.Output, o => o.BaseObject.GetType().FullName == type);
        var listed = Only("SleapRtc.SpaceInfo");
        Assert.Equal(("mice", "ready", 0), (listed.Text("Name"), listed.Text("State"), (int)listed.Prop("QueueLength")!));
        var inference = Only("SleapRtc.InferenceResult");
        Assert.Equal(("Succeeded", "mice"), (inference.Text("Status"), inference.Text("Space")));
        var predictions = JsonDocument.Parse(File.ReadAllText(inference.Text("PredictionsPath")!)).RootElement;
        Assert.Equal("centroid", predictions.GetProperty("models")[0].GetString());

        var taken = _ps.Run($"$room | Start-SleapWorker -Space mice -ModelPath $models -NvidiaSmiPath '{TestEnvironment.Fixture("nvidia-smi")}' -SleapNnPath '{TestEnvironment.Fixture("sleap-nn")}' -WorkingDirectory '{_work}'");
        Assert.Equal("SpaceNameTaken", taken.FirstError!.FullyQualifiedErrorId.Split(',')[0]);
        var offline = _ps.Run("Submit-SleapInference -Space nobody -DataPath $video -RoomId $room.RoomId");
        Assert.Equal("SpaceOffline", Assert.Single(offline.Errors).FullyQualifiedErrorId.Split(',')[0]);
        // Get-SleapWorker lists training workers only.
        Assert.DoesNotContain(_ps.Run("Get-SleapWorker -RoomId $room.RoomId -Status *").ThrowOnError().Output, w => w.Text("PeerId") == _ps.Run("$space.PeerId").Single<string>());
    }

    [Fact]
    public void The_result_view_fits_80_columns()
    {
        using var ps = new HostedPowerShell();
        ps.Run("""
            [SleapRtc.InferenceResult]@{ PredictionsPath = '/data/out/session2.predictions.slp'; Frames = 12000; Instances = 24000; Status = 'Succeeded'; WorkerId = 'worker-4f2a9c1e'; Duration = [TimeSpan]::FromSeconds(93) } | Out-Host
            """).ThrowOnError();
        var text = System.Text.RegularExpressions.Regex.Replace(ps.Host.TestUI.Transcript, "\u001b\\[[0-9;]*m", "");
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Trim().Length > 0).ToList();
        Assert.Equal(new[] { "Predictions", "Frames", "Instances", "Duration", "Status", "WorkerId" }, lines[0].Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.All(lines, l => Assert.True(l.TrimEnd().Length <= 80, l));
        Assert.Contains("session2.predictions.slp", text);
        Assert.Contains("00:01:33", text);
        Assert.Contains("24000", text);
    }
}
