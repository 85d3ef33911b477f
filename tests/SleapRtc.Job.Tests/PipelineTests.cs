using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// `Submit-SleapTraining ... | Submit-SleapInference` on one worker, at the library level: each job is offered to the same
/// worker the moment the previous one returned, with no wait in between. The worker ends a job (its status published and
/// acknowledged by the server, the reservation released) before its last word to our client, so that offer never meets
/// "busy", whichever signaling instance the client uses.
/// </summary>
public sealed class PipelineTests(Signaling.Tests.RedisTestServer redis) : IClassFixture<Signaling.Tests.RedisTestServer>
{
    private const int Rounds = 3;

    [Fact]
    public async Task Training_piped_into_inference_on_one_worker_never_meets_busy()
    {
        await using var room = await RoomFixture.StartAsync();
        await RunPipelineAsync(room);
    }

    /// <summary>The worker registered with one instance, the client with another: the worker's "available" reaches the
    /// shared store before the client hears that the job is over, so the other instance reserves the worker at once.</summary>
    [Fact]
    public async Task Training_piped_into_inference_through_another_instance_of_a_cluster_never_meets_busy()
    {
        await using var room = await RoomFixture.StartClusterAsync(redis.Url);
        await RunPipelineAsync(room);
    }

    /// <summary>A job the worker failed ends the same way: its error is the last word, and the next job is taken at once.</summary>
    [Fact]
    public async Task A_job_the_worker_failed_is_followed_at_once_by_the_next()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        var (models, broken) = InferenceTests.Inputs(room.Root, "broken.mp4", System.Text.Encoding.ASCII.GetBytes("STANDIN-FAIL please"));

        await Assert.ThrowsAsync<InferenceFailedException>(() => new InferenceSubmission(Target(room, worker, "failed"),
            new InferenceRequest { DataPath = broken, ModelPaths = models }).RunAsync(CancellationToken.None).WaitAsync(RoomFixture.Wait));
        Assert.Equal(WorkerStatus.Available, worker.Status);

        var package = Fixtures.BuildPackage(room.Root, "labels.next", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(1) });
        var trained = await new TrainingSubmission(Target(room, worker, "models", package)).RunAsync(CancellationToken.None).WaitAsync(RoomFixture.Wait);
        Assert.Equal("Succeeded", trained.Status);
    }

    private static SubmissionOptions Target(RoomFixture room, WorkerHost worker, string output, string package = "") => new()
    {
        PackagePath = package, OutputPath = Path.Combine(room.Root, output),
        RoomId = worker.Session.RoomId, Token = worker.Session.Token, Server = room.CompanionUrl, WorkerId = worker.Session.PeerId,
        PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
    };

    private static async Task RunPipelineAsync(RoomFixture room)
    {
        var worker = await room.StartWorkerAsync();
        var video = Path.Combine(room.Root, "session1.mp4");
        await File.WriteAllBytesAsync(video, Enumerable.Range(0, 20_000).Select(i => (byte)i).ToArray());
        SubmissionOptions Target(string output, string package = "") => PipelineTests.Target(room, worker, output, package);

        for (var round = 1; round <= Rounds; round++)
        {
            var package = Fixtures.BuildPackage(room.Root, $"labels.r{round}", new Dictionary<string, string> { ["centroid.json"] = Fixtures.Config(1) });
            var trained = await new TrainingSubmission(Target($"models{round}", package)).RunAsync(CancellationToken.None).WaitAsync(RoomFixture.Wait);
            Assert.Equal("Succeeded", trained.Status);
            // Not eventually: already, when the client is told the job is over.
            Assert.Equal(WorkerStatus.Available, worker.Status);

            var inferred = await new InferenceSubmission(Target($"predictions{round}"), new InferenceRequest { DataPath = video, ModelPaths = trained.ModelPaths })
                .RunAsync(CancellationToken.None).WaitAsync(RoomFixture.Wait);
            Assert.Equal("Succeeded", inferred.Status);
            Assert.Equal(worker.Session.PeerId, inferred.WorkerId);
            Assert.True(File.Exists(inferred.PredictionsPath));
            Assert.Equal(WorkerStatus.Available, worker.Status);
        }
    }
}
