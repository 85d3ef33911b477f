using SleapRtc.Protocol.Jobs;
using SleapRtc.Worker.Training;

namespace SleapRtc.Worker.Jobs;

// A track package (classic PACKAGE_TYPE::track, §5.3): unpack, run each "sleap-nn track" of track-script.sh,
// stream its output as TRACK_LOG lines, send the predictions file back, then INFERENCE_JOBS_DONE.
public sealed partial class WorkerJobSession
{
    private async Task<WorkerJobOutcome> RunTrackAsync(ReceivedPackage package, CancellationToken cancellationToken)
    {
        if (_options.RequestTimeout is not { } limit) return await TrackAsync(package, cancellationToken).ConfigureAwait(false);
        // A space request: its time counts from the end of the upload, waiting in line included.
        using var deadline = new CancellationTokenSource(limit);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, deadline.Token);
        try
        {
            return await TrackAsync(package, linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new JobFailureException(JobErrorCodes.RequestTimeout,
                $"The request did not finish within {limit.TotalSeconds:0} s (waiting in the space's queue included) and was stopped.");
        }
    }

    private async Task<WorkerJobOutcome> TrackAsync(ReceivedPackage package, CancellationToken cancellationToken)
    {
        var jobs = new List<string>();
        // Released as soon as the predictions are sent (Turn.Dispose is idempotent), not after the client hangs up.
        using var turn = _options.WaitForTurnAsync is { } wait ? await wait(cancellationToken).ConfigureAwait(false) : null;
        _writer.SendText(JobMessages.InferenceStart);
        var workDirectory = Unpack(package, TrackScript.FileName);
        var commands = WithSpaceModels(ReadTrackCommands(workDirectory));
        Progress.ConfigCount = commands.Count;
        Progress.StartedAt = DateTimeOffset.UtcNow;
        string? predictions = null;
        var failed = 0;
        for (var i = 0; i < commands.Count; i++)
        {
            jobs.Add(JobMessages.InferenceJobName);
            Progress.ConfigIndex = i + 1;
            Progress.ConfigName = JobMessages.InferenceJobName;
            SetPhase("inference");
            _writer.SendText(JobMessages.Format(JobMessages.InferenceJobStart, JobMessages.InferenceJobName));
            Emit($"Running inference {i + 1} of {commands.Count}: sleap-nn {string.Join(" ", commands[i].Arguments)}");
            var exitCode = await RunTrackerAsync(commands[i], workDirectory, cancellationToken).ConfigureAwait(false);
            if (exitCode == 0 && File.Exists(commands[i].OutputPath))
            {
                _writer.SendText(JobMessages.Format(JobMessages.InferenceJobEnd, JobMessages.InferenceJobName));
                predictions = commands[i].OutputPath;
                continue;
            }
            failed++;
            _writer.SendText(JobMessages.Format(JobMessages.InferenceJobError, JobMessages.InferenceJobName,
                exitCode.ToString(System.Globalization.CultureInfo.InvariantCulture)));
            Emit(exitCode == 0
                ? $"Inference {i + 1} exited 0 but wrote no {Path.GetFileName(commands[i].OutputPath)}"
                : $"Inference {i + 1} failed with exit code {exitCode}");
        }
        if (predictions is null)
            throw new JobFailureException(JobErrorCodes.InferenceFailed,
                failed == 1 ? "sleap-nn track failed; see its output above." : $"All {failed} sleap-nn track commands failed; see their output above.");

        SetPhase("download");
        await SendFileAsync(predictions, FileMetaInfo.WireSafeName(Path.GetFileName(predictions)), cancellationToken).ConfigureAwait(false);
        _writer.SendText(JobMessages.InferenceJobsDone);
        turn?.Dispose();
        SetPhase(failed == 0 ? "done" : "failed");
        await WaitForClientToFinishAsync(cancellationToken).ConfigureAwait(false);
        return new WorkerJobOutcome(JobId, failed == 0 ? WorkerJobEnd.Succeeded : WorkerJobEnd.Failed, jobs, failed,
            failed == 0 ? null : $"{failed} of {commands.Count} track commands failed");
    }

    /// <summary>A space keeps its models: the request names only data, the worker adds its own model folders.</summary>
    private IReadOnlyList<TrackCommand> WithSpaceModels(IReadOnlyList<TrackCommand> commands)
    {
        if (_options.SpaceModelPaths.Count == 0) return commands;
        return commands.Select(c => c with
        {
            Arguments = c.Arguments.Concat(_options.SpaceModelPaths.SelectMany(m => new[] { "--model_paths", m })).ToArray(),
        }).ToArray();
    }

    private static string InferenceErrorMessage(string text) =>
        JobMessages.Format(JobMessages.InferenceError, text.Replace(JobMessages.Separator, ": "));

    private IReadOnlyList<TrackCommand> ReadTrackCommands(string workDirectory)
    {
        IReadOnlyList<TrackCommand> commands;
        try
        {
            commands = TrackScript.Parse(File.ReadAllText(Path.Combine(workDirectory, TrackScript.FileName)), workDirectory);
        }
        catch (UnsafeTrackScriptException e)
        {
            throw new JobFailureException(JobErrorCodes.BadPackage, e.Message);
        }
        if (commands.Count == 0)
            throw new JobFailureException(JobErrorCodes.NoTrackScript,
                $"{TrackScript.FileName} names no inference (expected lines like 'sleap-nn track --data_path <file> --model_paths <folder>').");
        if (_options.TrainerPath is null)
            throw new JobFailureException(JobErrorCodes.TrainerNotFound,
                $"sleap-nn was not found on this worker (set -SleapNnPath or {TrainerProcess.EnvironmentVariable}, or put it on PATH).");
        return commands;
    }

    private async Task<int> RunTrackerAsync(TrackCommand command, string workDirectory, CancellationToken cancellationToken)
    {
        try
        {
            return await TrainerProcess.RunAsync(_options.TrainerPath!, command.Arguments, workDirectory, OnTrackerOutput, cancellationToken,
                _options.TrainerPriority).ConfigureAwait(false);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new JobFailureException(JobErrorCodes.TrainerNotFound, $"The tracker '{_options.TrainerPath}' could not be started: {e.Message}");
        }
    }

    private void OnTrackerOutput(TrainerOutput output)
    {
        // Classic sends every tracker line as "TRACK_LOG:<line>"; progress-bar updates keep their '\r' after the
        // prefix so clients can redraw instead of scroll (a classic client just prints it).
        _writer.TrySendText(JobMessages.TrackLogPrefix + (output.IsCarriageReturnUpdate ? "\r" : "") + output.Text);
        if (!output.IsCarriageReturnUpdate) LogLine?.Invoke(output.Text);
        var info = TrackOutputParser.Parse(output.Text);
        if (info.FramesDone is not { } done || info.FramesTotal is not { } total) return;
        // The monitor shows epochs; for inference they count frames, so its bar and numbers still mean something.
        var changed = Progress.Epoch != done;
        Progress.Epoch = done;
        Progress.EpochCount = total;
        PublishProgress(force: changed && done == total);
    }
}
