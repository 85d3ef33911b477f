using System.Text;

namespace SleapRtc.Protocol.Jobs;

/// <summary>
/// The classic sleap-RTC data-channel vocabulary (text frames "TYPE" or "TYPE::arg::arg", binary file
/// chunks, binary KEEP_ALIVE), plus our extensions. Extension messages all start with "SLEAPRTC_" and are
/// only sent to a peer that announced them, so a classic peer never sees one.
/// </summary>
public static class JobMessages
{
    public const string Separator = "::";

    // Client -> worker (classic).
    public const string PackageType = "PACKAGE_TYPE";
    public const string OutputDir = "OUTPUT_DIR";
    public const string FileMeta = "FILE_META";
    public const string EndOfFile = "END_OF_FILE";

    // Worker -> client (classic).
    public const string TrainJobStart = "TRAIN_JOB_START";
    public const string TrainJobEnd = "TRAIN_JOB_END";
    public const string TrainJobError = "TRAIN_JOB_ERROR";
    public const string TrainingJobsDone = "TRAINING_JOBS_DONE";

    // Worker -> client, inference (classic track job, §5.3). TRACK_LOG takes one colon, not two.
    public const string InferenceStart = "INFERENCE_START";
    public const string InferenceJobStart = "INFERENCE_JOB_START";
    public const string InferenceJobEnd = "INFERENCE_JOB_END";
    public const string InferenceJobError = "INFERENCE_JOB_ERROR";
    public const string InferenceError = "INFERENCE_ERROR";
    public const string InferenceJobsDone = "INFERENCE_JOBS_DONE";
    public const string TrackLogPrefix = "TRACK_LOG:";
    /// <summary>The job name classic workers put in INFERENCE_JOB_START/END/ERROR.</summary>
    public const string InferenceJobName = "inference";

    // Cancel spellings of later upstream versions, accepted from any client.
    public const string UpstreamJobCancel = "JOB_CANCEL";
    public const string UpstreamJobStop = "JOB_STOP";

    // Our extensions (negotiated, see JobExtensions).
    public const string Hello = "SLEAPRTC_HELLO";
    public const string Welcome = "SLEAPRTC_WELCOME";
    public const string Sha256 = "SLEAPRTC_SHA256";
    public const string Progress = "SLEAPRTC_PROGRESS";
    public const string Cancel = "SLEAPRTC_CANCEL";
    public const string Cancelled = "SLEAPRTC_CANCELLED";
    public const string Error = "SLEAPRTC_ERROR";
    /// <summary>Sent by both ends every couple of seconds once both announced the heartbeat feature; receivers only note it.</summary>
    public const string Heartbeat = "SLEAPRTC_HEARTBEAT";
    /// <summary>Worker → client once the package is received, verified and unpacked: from here the job runs to its end whether
    /// or not the client stays (<c>SLEAPRTC_ACCEPTED::{"job_id":…}</c>); <c>-NoWait</c> returns on it.</summary>
    public const string Accepted = "SLEAPRTC_ACCEPTED";
    /// <summary>Worker → client at the end of a collection (hello mode "collect"), after the last result file:
    /// <c>SLEAPRTC_COLLECTED::{"job_id":…,"state":…,"files":n}</c>. Client → worker (<c>{"job_id":…}</c>): every file arrived
    /// and checked out; at the end of a collection, and (feature "release") after a job's results or its error.</summary>
    public const string Collected = "SLEAPRTC_COLLECTED";
    /// <summary>Worker → client (feature "release") after the client's SLEAPRTC_COLLECTED: the job is over and the worker is
    /// available again, on itself and on the server (its status update acknowledged), so the client's next offer is taken.</summary>
    public const string Released = "SLEAPRTC_RELEASED";
    /// <summary>Connection test (offer purpose "probe"): the client sends <c>SLEAPRTC_PING::&lt;n&gt;</c>, the worker echoes
    /// <c>SLEAPRTC_PONG::&lt;n&gt;</c>; the client measures the round trip.</summary>
    public const string Ping = "SLEAPRTC_PING";
    public const string Pong = "SLEAPRTC_PONG";

    /// <summary>Receiver → sender when a transfer resumes over a new connection: how many bytes of which file it holds
    /// (<c>SLEAPRTC_TRANSFER_AT::{"name":…,"size":…,"offset":…,"prefix_sha256":…}</c>, see <see cref="TransferPoint"/>).</summary>
    public const string TransferAt = "SLEAPRTC_TRANSFER_AT";
    /// <summary>Sender → receiver just before FILE_META: the chunks that follow start at this byte of the file
    /// (<c>SLEAPRTC_TRANSFER_FROM::n</c>); the SHA-256 announced at the end is still the whole file's.</summary>
    public const string TransferFrom = "SLEAPRTC_TRANSFER_FROM";

    public const string TrainPackage = "train";
    public const string TrackPackage = "track";

    private static readonly byte[] KeepAliveBytes = Encoding.ASCII.GetBytes("KEEP_ALIVE");

    /// <summary>The binary keep-alive frame both sides send every 15 s; receivers drop it.</summary>
    public static ReadOnlySpan<byte> KeepAlive => KeepAliveBytes;

    public static bool IsKeepAlive(ReadOnlySpan<byte> frame) => frame.SequenceEqual(KeepAliveBytes);

    public static string Format(string type, params string[] args) =>
        args.Length == 0 ? type : type + Separator + string.Join(Separator, args);

    /// <summary>
    /// Splits "TYPE::a::b" into its type and arguments. FILE_META is the classic exception (single colons
    /// inside); use <see cref="FileMetaInfo.TryParse"/> on its single argument.
    /// </summary>
    public static (string Type, string[] Args) Parse(string message)
    {
        var index = message.IndexOf(Separator, StringComparison.Ordinal);
        if (index < 0) return (message.Trim(), Array.Empty<string>());
        var type = message.Substring(0, index);
        var rest = message.Substring(index + Separator.Length);
        // FILE_META and log-like payloads keep their argument whole.
        if (type == FileMeta || type == Progress || type == Hello || type == Welcome || type == TransferAt)
            return (type, new[] { rest });
        return (type, rest.Split(new[] { Separator }, StringSplitOptions.None));
    }

    /// <summary>The argument after "TYPE::", whole, or null when the message is not of that type.</summary>
    public static string? ArgumentOf(string message, string type)
    {
        var prefix = type + Separator;
        return message.StartsWith(prefix, StringComparison.Ordinal) ? message.Substring(prefix.Length) : null;
    }
}
