using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Signaling;
using SleapRtc.Worker;

namespace SleapRtc.Job.Tests;

/// <summary>
/// A client that speaks the job protocol message by message over the real WebRTC stack (offer through the real server),
/// so tests can say hello with a job id, overrides or a worker package path, send a resume file, and leave right after
/// SLEAPRTC_ACCEPTED, none of which Submit-SleapTraining's session does on its own.
/// </summary>
internal sealed class RunClient : IAsyncDisposable
{
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };
    private readonly WorkerChannel _connection;
    private readonly ConcurrentQueue<string> _texts = new();

    private RunClient(WorkerChannel connection)
    {
        _connection = connection;
        connection.Channel.MessageReceived += m => { if (m.IsText) _texts.Enqueue(m.Text!); };
    }

    public IReadOnlyCollection<string> Texts => _texts;

    public static async Task<RunClient> ConnectAsync(RoomFixture room, WorkerHost worker, string? purpose = null) =>
        new(await WorkerChannel.OpenAsync(room.Room(worker), worker.Session.PeerId, purpose, CollectOptions(room), CancellationToken.None).WaitAsync(RoomFixture.Wait));

    public static WorkerChannelOptions CollectOptions(RoomFixture room) => new() { PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback };

    /// <summary>Hello (without the heartbeat feature: this client sends none), PACKAGE_TYPE and OUTPUT_DIR.</summary>
    public void Begin(string? jobId = null, TrainingOverrides? overrides = null, string? workerPackagePath = null)
    {
        var hello = new JobExtensions.Handshake
        {
            Version = JobExtensions.Version, Features = new[] { JobExtensions.FeatureSha256, JobExtensions.FeatureProgress, JobExtensions.FeatureCancel },
            JobId = jobId, Overrides = overrides, WorkerPackagePath = workerPackagePath,
        };
        Send(JobMessages.Format(JobMessages.Hello, JsonSerializer.Serialize(hello, Json)));
        Send(JobMessages.Format(JobMessages.PackageType, JobMessages.TrainPackage));
        Send(JobMessages.Format(JobMessages.OutputDir, "models"));
    }

    public void Send(string text) => _connection.Channel.Send(text);

    public async Task UploadAsync(string path, string? wireName = null)
    {
        var writer = new FrameWriter(_connection.Channel.Send, f => _connection.Channel.Send(f), () => _connection.Channel.BufferedAmount,
            FrameWriter.DefaultHighWaterMark, () => true);
        await using var source = File.OpenRead(path);
        await FileSender.SendAsync(source, new FileMetaInfo(wireName ?? Path.GetFileName(path), source.Length, "False"), writer.SendText,
            writer.SendBinaryAsync, 16 * 1024, announceSha256: true, null, CancellationToken.None).WaitAsync(RoomFixture.Wait);
    }

    /// <summary>The first text message of <paramref name="type"/> (its argument part), waiting up to the fixture's limit.</summary>
    public async Task<string> WaitForAsync(string type)
    {
        string? found = null;
        await Fixtures.WaitUntilAsync(() => (found = _texts.FirstOrDefault(t => t.StartsWith(type + JobMessages.Separator, StringComparison.Ordinal) || t == type)) is not null);
        return found!.Length > type.Length ? found.Substring(type.Length + JobMessages.Separator.Length) : "";
    }

    /// <summary>The job id of SLEAPRTC_ACCEPTED; fails with the worker's error when it refused instead.</summary>
    public async Task<string> WaitForAcceptedAsync()
    {
        await Fixtures.WaitUntilAsync(() => _texts.Any(t => t.StartsWith(JobMessages.Accepted, StringComparison.Ordinal) || t.StartsWith(JobMessages.Error, StringComparison.Ordinal)));
        var error = _texts.FirstOrDefault(t => t.StartsWith(JobMessages.Error, StringComparison.Ordinal));
        if (error is not null) throw new InvalidOperationException("the worker refused the job: " + error);
        var accepted = await WaitForAsync(JobMessages.Accepted);
        return JsonDocument.Parse(accepted).RootElement.GetProperty("job_id").GetString()!;
    }

    /// <summary>Uploads a package and leaves as soon as the worker accepted it (what Submit-SleapTraining -NoWait does).</summary>
    public static async Task<string> SubmitAndLeaveAsync(RoomFixture room, WorkerHost worker, string package, string? jobId = null, TrainingOverrides? overrides = null)
    {
        await using var client = await ConnectAsync(room, worker);
        client.Begin(jobId, overrides);
        await client.UploadAsync(package);
        return await client.WaitForAcceptedAsync();
    }

    public ValueTask DisposeAsync() => _connection.DisposeAsync();
}
