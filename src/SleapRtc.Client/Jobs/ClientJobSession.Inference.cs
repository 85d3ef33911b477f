using SleapRtc.Protocol.Jobs;

namespace SleapRtc.Client.Jobs;

// The client side of a track job (classic PACKAGE_TYPE::track, §5.3): INFERENCE_* milestones, TRACK_LOG lines
// (progress read from them, so it shows with classic workers too) and the predictions file kept as sent.
public sealed partial class ClientJobSession
{
    private int _framesDone, _framesTotal, _inferenceFailures;
    private double _framesPerSecond;
    private int? _instances;

    private bool IsTrack => _options.PackageType == JobMessages.TrackPackage;

    /// <summary>Frames the tracker reported done (its last progress line); 0 when it printed none.</summary>
    public int FramesDone => _framesDone;
    /// <summary>Instances the tracker reported predicting, when it says so.</summary>
    public int? Instances => _instances;
    /// <summary>Track commands that failed on the worker (INFERENCE_JOB_ERROR).</summary>
    public int InferenceFailures => _inferenceFailures;

    /// <returns>True when the message belonged to the inference vocabulary and was handled.</returns>
    private bool OnInferenceText(string text, Action<Exception> fail)
    {
        if (text.StartsWith(JobMessages.TrackLogPrefix, StringComparison.Ordinal))
        {
            var line = text.Substring(JobMessages.TrackLogPrefix.Length);
            var update = line.StartsWith('\r');
            line = line.Trim('\r', '\n');
            // A classic worker reads the tracker's output by lines split on \n only, so one TRACK_LOG can carry a whole
            // run of carriage-return progress updates ("\rPredicting... 1/20 …\rPredicting... 20/20 …"): read each, in order.
            foreach (var segment in line.Split('\r')) if (segment.Length > 0) ReadTrackerLine(segment);
            if (!update) LogLine?.Invoke(line);
            return true;
        }
        var (type, args) = JobMessages.Parse(text);
        switch (type)
        {
            case JobMessages.InferenceStart:
                _phase = SubmissionPhase.Inferring;
                ReportInference(force: true);
                return true;
            case JobMessages.InferenceJobStart:
                _phase = SubmissionPhase.Inferring;
                LogLine?.Invoke("Inference started.");
                ReportInference(force: true);
                return true;
            case JobMessages.InferenceJobEnd:
                LogLine?.Invoke("Inference finished.");
                return true;
            case JobMessages.InferenceJobError:
                Interlocked.Increment(ref _inferenceFailures);
                LogLine?.Invoke($"Inference failed (exit code {args.ElementAtOrDefault(1)}).");
                return true;
            case JobMessages.InferenceError:
                fail(Failure(JobErrorCodes.InferenceFailed, string.Join(": ", args)));
                return true;
            case JobMessages.InferenceJobsDone:
                // Classic sends the predictions before this; none by now means there are none.
                lock (_gate)
                {
                    if (_results is null)
                        fail(Failure(JobErrorCodes.InferenceFailed, _inferenceFailures > 0
                            ? "sleap-nn track failed on the worker; see its output above."
                            : "The worker finished without sending a predictions file."));
                }
                return true;
            case JobMessages.Progress:
                return true; // our worker's structured progress is for training; frames come from TRACK_LOG
            default:
                return false;
        }
    }

    private void ReadTrackerLine(string line)
    {
        var info = TrackOutputParser.Parse(line);
        if (info.IsEmpty) return;
        if (info.FramesDone is { } done && info.FramesTotal is { } total)
        {
            _framesDone = done;
            _framesTotal = total;
        }
        if (info.FramesPerSecond is { } fps) _framesPerSecond = fps;
        if (info.Instances is { } instances) _instances = instances;
        ReportInference(force: _framesDone == _framesTotal);
    }

    private void ReportInference(bool force)
    {
        if (!ShouldReport(force)) return;
        ProgressChanged?.Invoke(new SubmissionProgress
        {
            Phase = SubmissionPhase.Inferring, WorkerId = _workerId,
            Inference = new InferenceProgress { FramesDone = _framesDone, FramesTotal = _framesTotal, FramesPerSecond = _framesPerSecond, Instances = _instances },
        });
    }

    /// <summary>
    /// The predictions file: renamed from its partial name into the output folder under the worker's name for it, or,
    /// when a file of that name is already there, under that name with the time appended (never overwritten).
    /// </summary>
    private static string KeepResultFile(FileReceiver results, string outputPath)
    {
        var target = Path.Combine(outputPath, results.Meta.Name);
        if (File.Exists(target))
        {
            var name = results.Meta.Name;
            var stem = name.EndsWith(".predictions.slp", StringComparison.OrdinalIgnoreCase) ? name.Substring(0, name.Length - ".predictions.slp".Length) : Path.GetFileNameWithoutExtension(name);
            var extension = name.Substring(stem.Length);
            target = Path.Combine(outputPath, $"{stem}-{DateTime.Now:yyyyMMdd-HHmmss-fff}{extension}");
        }
        File.Move(results.Path, target);
        return target;
    }

    private SleapRtcException Failure(string code, string detail) => (IsTrack, code) switch
    {
        (true, JobErrorCodes.RequestTimeout) => new SleapRtcException("InferenceRequestTimeout", SleapRtcErrorKind.OperationTimeout,
            $"Worker {_workerId}: {detail}", "The space runs one request at a time: try again when its queue is shorter (Get-SleapSpace), or start the space with a longer Start-SleapWorker -RequestTimeoutSec."),
        (true, _) => new InferenceFailedException(_workerId, code, detail),
        _ => new JobFailedException(_workerId, code, detail),
    };
}
