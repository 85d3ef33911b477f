using System.Collections.Concurrent;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SleapRtc.Client.Jobs;
using SleapRtc.Protocol.Jobs;
using SleapRtc.Signaling.Client;
using SleapRtc.WebRtc;
using Xunit;

namespace SleapRtc.Job.Tests;

/// <summary>
/// The classic track job (§5.3) both ways over the real server and WebRTC stack: a client that sends exactly what
/// classic client-track sends drives our worker, and our client runs against a worker that answers exactly as
/// classic worker_class.py does for PACKAGE_TYPE::track. Neither side may see an extension message.
/// </summary>
public sealed class ClassicTrackCompatTests
{
    private static readonly TimeSpan Wait = RoomFixture.Wait;

    [Fact]
    public async Task A_classic_track_client_gets_predictions_from_our_worker()
    {
        await using var room = await RoomFixture.StartAsync();
        var worker = await room.StartWorkerAsync();
        // Classic create_track_package: contents zipped flat, "-o predictions.slp" (a name classic's own worker
        // glob would miss: ours returns the file the command names).
        var zip = Path.Combine(room.Root, "track_package.zip");
        using (var archive = ZipFile.Open(zip, ZipArchiveMode.Create))
        {
            Write(archive, "labels.v001.slp", "labels");
            Write(archive, "models/centroid/best.ckpt", "ckpt");
            Write(archive, "track-script.sh", "sleap-nn track --data_path labels.v001.slp \\\n --model_paths models/centroid \\\n -o predictions.slp\n");
        }

        await using var signaling = new SignalingClient(room.Url);
        var signIn = await signaling.AnonymousSignInAsync();
        await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, worker.Session.RoomId, worker.Session.Token, signIn.IdToken, "client",
            JsonNode.Parse("""{"tags":["sleap-rtc","inference-client"],"properties":{"sleap_version":"1.4.1"}}""")!.AsObject()));
        await using var peer = room.Transport.Create(RoomFixture.Loopback);
        var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        signaling.AnswerReceived += m => answer.TrySetResult(m.Sdp);
        await signaling.SendOfferAsync(worker.Session.PeerId, await peer.CreateOfferAsync(CancellationToken.None));
        await peer.AcceptAnswerAsync(await answer.Task.WaitAsync(Wait), CancellationToken.None);
        var channel = await peer.OpenDataChannelAsync("my-data-channel", CancellationToken.None).WaitAsync(Wait);

        var texts = new ConcurrentQueue<string>();
        var result = new MemoryStream();
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        channel.MessageReceived += m =>
        {
            if (!m.IsText) { if (!JobMessages.IsKeepAlive(m.Binary.Span)) result.Write(m.Binary.Span); return; }
            texts.Enqueue(m.Text!);
            if (m.Text == "INFERENCE_JOBS_DONE") done.TrySetResult();
        };
        var bytes = await File.ReadAllBytesAsync(zip);
        channel.Send("PACKAGE_TYPE::track");
        channel.Send("OUTPUT_DIR::.");
        channel.Send($"FILE_META::track_package.zip:{bytes.Length}:false");
        for (var offset = 0; offset < bytes.Length; offset += 65536)
            await channel.SendAsync(bytes.AsMemory(offset, Math.Min(65536, bytes.Length - offset)), 16 * 1024 * 1024, CancellationToken.None);
        channel.Send("END_OF_FILE");

        await done.Task.WaitAsync(Wait);
        var sequence = texts.ToList();
        Assert.DoesNotContain(sequence, t => t.StartsWith("SLEAPRTC_"));
        Assert.Equal("INFERENCE_START", sequence.First(t => t.StartsWith("INFERENCE")));
        Assert.Contains("INFERENCE_JOB_START::inference", sequence);
        Assert.Contains(sequence, t => t.StartsWith("TRACK_LOG:") && t.Contains("Predicted 40 instances in 20 frames"));
        Assert.True(sequence.IndexOf("INFERENCE_JOB_END::inference") < sequence.FindIndex(t => t.StartsWith("FILE_META::")));
        Assert.Equal($"FILE_META::predictions.slp:{result.Length}:.", sequence.Single(t => t.StartsWith("FILE_META::")));
        Assert.True(sequence.IndexOf("END_OF_FILE") < sequence.IndexOf("INFERENCE_JOBS_DONE"));
        var predictions = JsonDocument.Parse(result.ToArray()).RootElement;
        Assert.Equal("labels.v001.slp", predictions.GetProperty("data_name").GetString());
        Assert.Equal("centroid", predictions.GetProperty("models")[0].GetString());
    }

    [Fact]
    public async Task Our_client_runs_inference_on_a_classic_worker()
    {
        await using var room = await RoomFixture.StartAsync();
        await using var admin = new SignalingClient(room.Url);
        var roomInfo = await admin.CreateRoomAsync("classic");
        await using var classic = await ClassicTrackWorker.StartAsync(room, roomInfo.RoomId, roomInfo.Token);
        var (models, data) = InferenceTests.Inputs(room.Root);
        var output = Path.Combine(room.Root, "from-classic");
        var logs = new ConcurrentQueue<string>();
        var submission = new InferenceSubmission(new SubmissionOptions
        {
            RoomId = roomInfo.RoomId, Token = roomInfo.Token, Server = room.Url, AutoSelect = true, OutputPath = output,
            PeerConnectionFactory = room.Transport, PeerConnection = RoomFixture.Loopback,
        }, new InferenceRequest { DataPath = data, ModelPaths = models });
        submission.LogLine += logs.Enqueue;

        var result = await submission.RunAsync(CancellationToken.None).WaitAsync(Wait);

        Assert.Equal(classic.PeerId, result.WorkerId);
        Assert.Equal("Succeeded", result.Status);
        Assert.Equal(Path.Combine(output, "session1.predictions.slp"), result.PredictionsPath);
        Assert.Equal("classic predictions", File.ReadAllText(result.PredictionsPath!));
        Assert.Equal((12, (int?)24), (result.Frames, result.Instances));
        Assert.Contains(logs, l => l.Contains("Predicted 24 instances"));
        // What the classic worker received: the classic vocabulary only, and a package its own rules can run.
        Assert.DoesNotContain(classic.Received, t => t.StartsWith("SLEAPRTC_"));
        Assert.Equal(new[] { "PACKAGE_TYPE::track", "OUTPUT_DIR::." }, classic.Received.Take(2));
        Assert.StartsWith("FILE_META::track_package.zip:", classic.Received.ElementAt(2));
        Assert.Contains("--model_paths models/centroid", classic.TrackScript);
        Assert.Contains("-o session1.predictions.slp", classic.TrackScript);
    }

    private static void Write(ZipArchive archive, string name, string content)
    {
        using var stream = archive.CreateEntry(name).Open();
        stream.Write(Encoding.UTF8.GetBytes(content));
    }

    /// <summary>
    /// A worker that behaves as classic worker_class.py does for a track package: classic registration (no
    /// extension property), answers one offer, stores the upload, unpacks it where classic does (./&lt;zip stem&gt;),
    /// reads track-script.sh, replies with INFERENCE_START, INFERENCE_JOB_START, TRACK_LOG lines,
    /// INFERENCE_JOB_END, the predictions with FILE_META (32 KiB chunks) and INFERENCE_JOBS_DONE.
    /// </summary>
    private sealed class ClassicTrackWorker : IAsyncDisposable
    {
        private readonly SignalingClient _signaling;
        private readonly IPeerConnection _peer;
        private readonly MemoryStream _upload = new();
        public ConcurrentQueue<string> Received { get; } = new();
        public string PeerId { get; private set; } = "";
        public string TrackScript { get; private set; } = "";

        private ClassicTrackWorker(SignalingClient signaling, IPeerConnection peer) { _signaling = signaling; _peer = peer; }

        public static async Task<ClassicTrackWorker> StartAsync(RoomFixture room, string roomId, string token)
        {
            var signaling = new SignalingClient(room.Url);
            var worker = new ClassicTrackWorker(signaling, room.Transport.Create(RoomFixture.Loopback));
            var signIn = await signaling.AnonymousSignInAsync();
            worker.PeerId = signIn.Username;
            await signaling.ConnectAsync(new RegistrationRequest(signIn.Username, roomId, token, signIn.IdToken, "worker",
                JsonNode.Parse("""{"tags":["sleap-rtc","training-worker","inference-worker"],"properties":{"gpu_memory_mb":8192,"gpu_model":"classic","status":"available","sleap_version":"1.4.1"}}""")!.AsObject()));
            worker._peer.DataChannelOpened += worker.Serve;
            signaling.OfferReceived += offer => _ = Task.Run(async () =>
            {
                var answer = await worker._peer.AcceptOfferAsync(offer.Sdp, CancellationToken.None);
                await signaling.SendAnswerAsync(offer.Sender, answer);
            });
            return worker;
        }

        private void Serve(IDataChannel channel)
        {
            channel.MessageReceived += m =>
            {
                if (!m.IsText) { if (!JobMessages.IsKeepAlive(m.Binary.Span)) _upload.Write(m.Binary.Span); return; }
                Received.Enqueue(m.Text!);
                if (m.Text == "END_OF_FILE") _ = Task.Run(() => RunTrackAsync(channel));
            };
        }

        private async Task RunTrackAsync(IDataChannel channel)
        {
            using (var archive = new ZipArchive(new MemoryStream(_upload.ToArray())))
                TrackScript = new StreamReader(archive.GetEntry("track_package/track-script.sh")!.Open()).ReadToEnd();
            var output = TrackScript.Split(' ', '\n').SkipWhile(t => t != "-o").Skip(1).First();
            channel.Send("INFERENCE_START");
            channel.Send("INFERENCE_JOB_START::inference");
            channel.Send("TRACK_LOG:Predicting... 6/12 frames 100.0 FPS\n");
            channel.Send("TRACK_LOG:Predicting... 12/12 frames 120.0 FPS\n");
            channel.Send("TRACK_LOG:Predicted 24 instances in 12 frames\n");
            channel.Send("INFERENCE_JOB_END::inference");
            var bytes = Encoding.UTF8.GetBytes("classic predictions");
            channel.Send($"FILE_META::{output}:{bytes.Length}:.");
            for (var offset = 0; offset < bytes.Length; offset += 32 * 1024)
                await channel.SendAsync(bytes.AsMemory(offset, Math.Min(32 * 1024, bytes.Length - offset)), 16 * 1024 * 1024, CancellationToken.None);
            channel.Send("END_OF_FILE");
            channel.Send("INFERENCE_JOBS_DONE");
        }

        public async ValueTask DisposeAsync()
        {
            await _peer.DisposeAsync();
            await _signaling.DisposeAsync();
        }
    }
}
