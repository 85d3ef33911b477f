using System.Collections.Concurrent;
using System.IO.Compression;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker;
using SleapRtc.Worker.Training;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// Remote inference (classic PACKAGE_TYPE::track) end to end: real signaling server, real worker running the
/// stand-in tracker (tests/fixtures/sleap-nn track), real WebRTC on loopback. The stand-in writes its inputs
/// into the predictions file, so the tests check what actually reached the tracker.
/// </summary>
public sealed class InferenceTests
{
    private static readonly TimeSpan Wait = RoomFixture.Wait;

    /// <summary>Two model folders (as Submit-SleapTraining returns them) and a data file of known bytes.</summary>
    internal static (string[] Models, string Data) Inputs(string root, string dataName = "session1.mp4", byte[]? content = null)
    {
        var models = new[] { "centroid", "centered_instance" }.Select(name =>
        {
            var dir = Path.Combine(root, "models", name);
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "training_config.json"), "{\"name\": \"" + name + "\"}");
            File.WriteAllBytes(Path.Combine(dir, "best.ckpt"), Encoding.ASCII.GetBytes("CKPT-" + name));
            return dir;
        }).ToArray();
        var data = Path.Combine(root, dataName);
        File.WriteAllBytes(data, content ?? Enumerable.Range(0, 50_000).Select(i => (byte)(i * 7)).ToArray());
        return (models, data);
    }

    private static SubmissionOptions Target(RoomFixture room, WorkerHost worker, string output) => new()
    {
        OutputPath = output,
        SessionString = worker.Session.SessionString,
        PeerConnectionFactory = room.Transport,
        PeerConnection = RoomFixture.Loopback,
    };

    [Fact]
    public async Task Track_job_returns_predictions_made_from_the_uploaded_data_and_models()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var (models, data) = Inputs(room.Root);
        var output = Path.Combine(room.Root, "predictions");
        var submission = new InferenceSubmission(Target(room, worker, output),
            new InferenceRequest { DataPath = data, ModelPaths = models, BatchSize = 4, PeakThreshold = 0.25 });
        var progress = new ConcurrentQueue<SubmissionProgress>();
        var logs = new ConcurrentQueue<string>();
        submission.ProgressChanged += progress.Enqueue;
        submission.LogLine += logs.Enqueue;

        var result = await submission.RunAsync(CancellationToken.None).WaitAsync(Wait);

        Assert.Equal("Succeeded", result.Status);
        Assert.Equal(worker.Session.PeerId, result.WorkerId);
        Assert.Equal(Path.Combine(output, "session1.predictions.slp"), result.PredictionsPath);
        var predictions = JsonDocument.Parse(File.ReadAllText(result.PredictionsPath!)).RootElement;
        Assert.Equal("session1.mp4", predictions.GetProperty("data_name").GetString());
        Assert.Equal(Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(data))).ToLowerInvariant(), predictions.GetProperty("data_sha256").GetString());
        Assert.Equal(new[] { "centroid", "centered_instance" }, predictions.GetProperty("models").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("4", predictions.GetProperty("batch_size").GetString());
        Assert.Equal("0.25", predictions.GetProperty("peak_threshold").GetString());
        Assert.Equal(20, predictions.GetProperty("frames").GetArrayLength());
        Assert.Equal((20, (int?)40), (result.Frames, result.Instances));
        Assert.Equal(data, result.DataPath);
        Assert.StartsWith("job_", result.JobId);

        var inferring = progress.Where(p => p.Phase == SubmissionPhase.Inferring && p.Inference is not null).Select(p => p.Inference!).ToList();
        Assert.Contains(inferring, p => p is { FramesDone: 20, FramesTotal: 20 } && p.FramesPerSecond > 0);
        Assert.Contains(logs, l => l == "Inference started.");
        Assert.Contains(logs, l => l.Contains("Predicted 40 instances in 20 frames"));
        Assert.Empty(Directory.GetFiles(output, "*.partial", SearchOption.AllDirectories).Concat(Directory.GetFiles(output, ".*")));
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
    }

    [Fact]
    public async Task Frame_selection_reaches_the_tracker()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var (models, data) = Inputs(room.Root, "labels.v002.slp");
        var output = Path.Combine(room.Root, "out");

        var ranges = await new InferenceSubmission(Target(room, worker, output),
            new InferenceRequest { DataPath = data, ModelPaths = models.Take(1).ToArray(), Frames = "0-4, 10" }).RunAsync(CancellationToken.None).WaitAsync(Wait);
        var frames = JsonDocument.Parse(File.ReadAllText(ranges.PredictionsPath!)).RootElement.GetProperty("frames");
        Assert.Equal(new[] { 0, 1, 2, 3, 4, 10 }, frames.EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(6, ranges.Frames);

        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
        var suggested = await new InferenceSubmission(Target(room, worker, output),
            new InferenceRequest { DataPath = data, ModelPaths = models, OnlySuggestedFrames = true }).RunAsync(CancellationToken.None).WaitAsync(Wait);
        var root = JsonDocument.Parse(File.ReadAllText(suggested.PredictionsPath!)).RootElement;
        Assert.True(root.GetProperty("only_suggested_frames").GetBoolean());
        Assert.Equal(4, suggested.Frames);
    }

    [Fact]
    public async Task A_failing_tracker_is_an_inference_error_and_the_worker_is_available_again()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var (models, data) = Inputs(room.Root, "broken.mp4", Encoding.ASCII.GetBytes("STANDIN-FAIL please"));
        var logs = new ConcurrentQueue<string>();
        var submission = new InferenceSubmission(Target(room, worker, Path.Combine(room.Root, "out")), new InferenceRequest { DataPath = data, ModelPaths = models });
        submission.LogLine += logs.Enqueue;

        var error = await Assert.ThrowsAsync<InferenceFailedException>(() => submission.RunAsync(CancellationToken.None).WaitAsync(Wait));

        Assert.Equal("InferenceJobFailed", error.ErrorId);
        Assert.Equal(JobErrorCodes.InferenceFailed, error.Code);
        Assert.Contains(logs, l => l.Contains("could not read the video"));
        Assert.Contains(logs, l => l.StartsWith("Inference failed (exit code 3)"));
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
    }

    [Fact]
    public async Task Missing_inputs_fail_before_connecting()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var (models, data) = Inputs(room.Root);
        var noData = await Assert.ThrowsAsync<InferenceInputNotFoundException>(() => new InferenceSubmission(Target(room, worker, room.Root),
            new InferenceRequest { DataPath = data + ".missing", ModelPaths = models }).RunAsync(CancellationToken.None));
        Assert.Equal("InferenceInputNotFound", noData.ErrorId);
        var noModel = await Assert.ThrowsAsync<InferenceInputNotFoundException>(() => new InferenceSubmission(Target(room, worker, room.Root),
            new InferenceRequest { DataPath = data, ModelPaths = new[] { Path.Combine(room.Root, "nope") } }).RunAsync(CancellationToken.None));
        Assert.Contains("model folder", noModel.Message);
    }

    [Theory]
    [InlineData("sleap-nn track --data_path /etc/passwd --model_paths models/a")]
    [InlineData("sleap-nn track --data_path v.mp4 --model_paths ../../elsewhere")]
    [InlineData("sleap-nn track --data_path v.mp4 --model_paths models/a -o /tmp/out.slp")]
    [InlineData("sleap-nn track --data_path=C:\\\\video.mp4 --model_paths models/a")]
    public async Task A_track_script_naming_paths_outside_the_package_is_refused_by_the_worker(string command)
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var zip = Path.Combine(room.Root, "evil.zip");
        using (var archive = ZipFile.Open(zip, ZipArchiveMode.Create))
        {
            WriteEntry(archive, "track-script.sh", command + "\n");
            WriteEntry(archive, "v.mp4", "video");
            WriteEntry(archive, "models/a/best.ckpt", "ckpt");
        }
        var logs = new ConcurrentQueue<string>();
        var error = await Assert.ThrowsAsync<InferenceFailedException>(() => RunRawTrackPackageAsync(room, worker, zip, logs));
        Assert.Equal(JobErrorCodes.BadPackage, error.Code);
        Assert.Contains("outside the package", error.Message);
        await Fixtures.WaitUntilAsync(() => worker.Status == WorkerStatus.Available);
    }

    [Fact]
    public async Task A_package_without_track_script_gets_the_classic_no_script_error()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var zip = Path.Combine(room.Root, "empty.zip");
        using (var archive = ZipFile.Open(zip, ZipArchiveMode.Create)) WriteEntry(archive, "v.mp4", "video");
        var error = await Assert.ThrowsAsync<InferenceFailedException>(() => RunRawTrackPackageAsync(room, worker, zip, new ConcurrentQueue<string>()));
        Assert.Contains("track-script.sh", error.Message);
    }

    /// <summary>Sends a hand-made package as a track job through the same connector Submit-SleapInference uses.</summary>
    private static async Task RunRawTrackPackageAsync(RoomFixture room, WorkerHost worker, string zip, ConcurrentQueue<string> logs)
    {
        var connector = new TrainingSubmission(Target(room, worker, Path.Combine(room.Root, "raw-out")));
        await connector.RunOnWorkerAsync("inference", async (channel, info, clock, ct) =>
        {
            var session = new ClientJobSession(channel, info.PeerId, JobExtensions.IsAdvertised(info.Properties),
                new ClientJobOptions { PackageType = JobMessages.TrackPackage, RemoteOutputDirectory = "." });
            session.LogLine += logs.Enqueue;
            return await session.RunAsync(zip, Path.Combine(room.Root, "raw-out"), ct);
        }, CancellationToken.None).WaitAsync(Wait);
    }

    private static void WriteEntry(ZipArchive archive, string name, string content)
    {
        using var stream = archive.CreateEntry(name).Open();
        stream.Write(Encoding.UTF8.GetBytes(content));
    }
}

/// <summary>track-script.sh parsing and the package the client builds, without a network.</summary>
public sealed class TrackScriptTests
{
    [Fact]
    public void Classic_script_with_continuations_parses_and_gets_an_output_when_it_names_none()
    {
        var dir = Fixtures.NewTempDirectory("track-script");
        var commands = TrackScript.Parse("#!/bin/bash\nsleap-nn track --data_path labels.slp \\\n  --model_paths models/a \\\n  --model_paths models/b --only_suggested_frames\n", dir);
        var command = Assert.Single(commands);
        Assert.Equal(new[] { "track", "--data_path", "labels.slp", "--model_paths", "models/a", "--model_paths", "models/b", "--only_suggested_frames", "-o", "labels.predictions.slp" }, command.Arguments);
        Assert.Equal(Path.Combine(Path.GetFullPath(dir), "labels.predictions.slp"), command.OutputPath);
    }

    [Fact]
    public void The_client_package_holds_a_top_folder_the_data_the_models_and_a_script_the_worker_accepts()
    {
        var dir = Fixtures.NewTempDirectory("track-package");
        var (models, data) = InferenceTests.Inputs(dir, "my video.mp4");
        var zip = TrackPackage.Build(new InferenceRequest { DataPath = data, ModelPaths = models, Frames = "1-3", BatchSize = 8 }, dir);
        using var archive = ZipFile.OpenRead(zip);
        var names = archive.Entries.Select(e => e.FullName).ToList();
        Assert.All(names, n => Assert.StartsWith("track_package/", n));
        Assert.Contains("track_package/my video.mp4", names);
        Assert.Contains("track_package/models/centroid/best.ckpt", names);
        Assert.Contains("track_package/models/centered_instance/training_config.json", names);
        Assert.Contains("track_package/models/centroid/", names); // the folder itself, so an empty one still arrives
        var script = new StreamReader(archive.GetEntry("track_package/track-script.sh")!.Open()).ReadToEnd();
        var extracted = Path.Combine(dir, "x");
        Directory.CreateDirectory(extracted);
        var command = Assert.Single(TrackScript.Parse(script, extracted));
        Assert.Equal(new[] { "track", "--data_path", "my video.mp4", "--model_paths", "models/centroid", "--model_paths", "models/centered_instance",
            "-o", "my video.predictions.slp", "--frames", "1-3", "--batch_size", "8" }, command.Arguments);
    }

    [Theory]
    [InlineData("Predicting... 45/100 frames 212.5 FPS", 45, 100, 212.5, null)]
    [InlineData("INFO: Predicted 40 instances in 20 frames; saved predictions to x.slp", null, null, null, 40)]
    [InlineData("Epoch 3/10 loss=0.1", null, null, null, null)]
    public void Tracker_output_is_read_for_frames_rate_and_instances(string line, int? done, int? total, double? fps, int? instances)
    {
        var info = TrackOutputParser.Parse(line);
        Assert.Equal((done, total, fps, instances), (info.FramesDone, info.FramesTotal, info.FramesPerSecond, info.Instances));
    }
}
