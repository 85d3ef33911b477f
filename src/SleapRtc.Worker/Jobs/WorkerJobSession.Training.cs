using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
using SleapRtc.Protocol.Signaling;
using SleapRtc.WebRtc;
using SleapRtc.Worker.Training;

namespace SleapRtc.Worker.Jobs;

// The job's work after the package arrived: unpack, train each config, send the results back.
public sealed partial class WorkerJobSession
{
    private const int MaxLossHistory = 500;
    private static readonly TimeSpan ProgressInterval = TimeSpan.FromMilliseconds(200);
    private long _lastProgressTicks;

    /// <param name="scriptName">The script that marks the work folder: train-script.sh or track-script.sh.</param>
    private string Unpack(ReceivedPackage package, string scriptName)
    {
        var extractTo = PackageFolder;
        try
        {
            PackageArchive.ExtractSafely(package.Path, extractTo, _options.PackageLimits, extractedWhileReceived: package.ExtractedWhileReceived);
        }
        catch (UnsafeArchiveException e)
        {
            throw new JobFailureException(JobErrorCodes.BadPackage, e.Message);
        }
        catch (PackageLimitExceededException e)
        {
            throw new JobFailureException(JobErrorCodes.BadPackage, e.Message + e.Limit switch
            {
                PackageLimit.CompressionRatio => " The worker's limit is set with Start-SleapWorker -MaxPackageRatio.",
                PackageLimit.UnpackedSize => " The worker's limit is set with Start-SleapWorker -MaxUnpackedSize.",
                _ => " Free space in the worker's working directory.",
            });
        }
        catch (InvalidDataException e)
        {
            throw new JobFailureException(JobErrorCodes.BadPackage, $"The package '{package.Name}' is not a valid zip file ({e.Message}).");
        }
        finally
        {
            // The zip is no longer needed; free the disk space now rather than at the end (a data-root package is the user's).
            if (package.Owned) try { File.Delete(package.Path); } catch (IOException) { }
        }
        var training = scriptName == TrainScript.FileName;
        return FindWorkDirectory(extractTo, Path.GetFileNameWithoutExtension(package.Name), scriptName)
            ?? throw new JobFailureException(training ? JobErrorCodes.NoTrainScript : JobErrorCodes.NoTrackScript,
                $"The package has no {scriptName} (looked in its top folder and in '{Path.GetFileNameWithoutExtension(package.Name)}/'). " +
                (training ? "Export the package from SLEAP with a training script." : "Build it with Submit-SleapInference or SLEAP's remote-inference export."));
    }

    /// <summary>Classic expects the zip to hold a folder named like the zip; packages zipped flat are accepted too.</summary>
    private static string? FindWorkDirectory(string extracted, string zipStem, string scriptName)
    {
        var classic = Path.Combine(extracted, zipStem);
        if (File.Exists(Path.Combine(classic, scriptName))) return classic;
        if (File.Exists(Path.Combine(extracted, scriptName))) return extracted;
        var nested = Directory.EnumerateDirectories(extracted)
            .Where(d => File.Exists(Path.Combine(d, scriptName)))
            .ToList();
        return nested.Count == 1 ? nested[0] : null;
    }

    private IReadOnlyList<string> ReadConfigs(string workDirectory)
    {
        var configs = TrainScript.ParseConfigs(File.ReadAllText(Path.Combine(workDirectory, TrainScript.FileName)));
        if (configs.Count == 0)
            throw new JobFailureException(JobErrorCodes.NoTrainScript,
                $"{TrainScript.FileName} names no config (expected lines like 'sleap-nn train --config-name <file>').");
        try
        {
            // Every path the trainer gets, checked before any config runs: one bad line refuses the whole package.
            foreach (var config in configs) PackagePaths.CheckConfig(workDirectory, config);
            PackagePaths.Resolve(workDirectory, TrainerProcess.ConfigDirectory, "config folder");
            PackagePaths.Resolve(workDirectory, _outputDirectory, "output folder");
        }
        catch (PathOutsidePackageException e)
        {
            throw new JobFailureException(JobErrorCodes.BadPackage, e.Message);
        }
        if (_options.TrainerPath is null)
            throw new JobFailureException(JobErrorCodes.TrainerNotFound,
                $"sleap-nn was not found on this worker (set -SleapNnPath or {TrainerProcess.EnvironmentVariable}, or put it on PATH).");
        return configs;
    }

    /// <summary>Unpacks the resume checkpoint the client sent (resume_from) next to the package.</summary>
    /// <returns>The full path of its best.ckpt, or null when the job does not resume.</returns>
    private string? UnpackResumeCheckpoint()
    {
        if (_overrides?.ResumeFrom is not { } folder) return null;
        if (_resumeZip is null)
            throw new JobFailureException(JobErrorCodes.BadOverride,
                $"resume_from '{folder}' was given but no {TrainingOverrideRules.ResumeFileName(folder)} was sent before the package.");
        var target = Path.Combine(_jobDirectory, "resume", folder);
        try
        {
            PackageArchive.ExtractSafely(_resumeZip, target, _options.PackageLimits);
        }
        catch (Exception e) when (e is UnsafeArchiveException or PackageLimitExceededException or InvalidDataException)
        {
            throw new JobFailureException(JobErrorCodes.BadOverride, $"The resume checkpoint '{folder}' could not be unpacked: {e.Message}");
        }
        finally
        {
            try { File.Delete(_resumeZip); } catch (IOException) { }
        }
        // The zip holds the folder's contents, or the folder itself.
        var checkpoint = new[] { Path.Combine(target, TrainingOverrideRules.ResumeCheckpointFile), Path.Combine(target, folder, TrainingOverrideRules.ResumeCheckpointFile) }
            .FirstOrDefault(File.Exists);
        return checkpoint ?? throw new JobFailureException(JobErrorCodes.BadOverride,
            $"The resume checkpoint folder '{folder}' holds no {TrainingOverrideRules.ResumeCheckpointFile}.");
    }

    /// <returns>How many configs failed.</returns>
    private async Task<int> TrainAllAsync(string workDirectory, IReadOnlyList<string> configs, string? resumeCheckpoint, CancellationToken cancellationToken)
    {
        var failed = 0;
        Progress.ConfigCount = configs.Count;
        Progress.StartedAt = DateTimeOffset.UtcNow;
        for (var i = 0; i < configs.Count && !_stopEarly.IsCancellationRequested; i++)
        {
            var stem = TrainScript.ConfigStem(configs[i]);
            Progress.ConfigIndex = i + 1;
            Progress.ConfigName = stem;
            Progress.Epoch = 0;
            Progress.EpochCount = 0;
            Progress.Loss = null;
            Progress.ValLoss = null;
            Progress.LossHistory = Array.Empty<double>();
            Progress.EpochCount = _overrides?.MaxEpochs ?? MaxEpochsFromConfig(Path.Combine(workDirectory, configs[i])) ?? 0;
            SetPhase("training");
            _writer.TrySendText(JobMessages.Format(JobMessages.TrainJobStart, stem));
            Emit($"Training config {i + 1} of {configs.Count}: {configs[i]}");

            var arguments = TrainerProcess.BuildArguments(configs[i], _outputDirectory,
                TrainingOverrideRules.ToArguments(_overrides, stem, configs.Count, resumeCheckpoint));
            if (_overrides is not null) Emit("sleap-nn " + string.Join(" ", arguments));
            int exitCode;
            try
            {
                exitCode = await TrainerProcess.RunAsync(_options.TrainerPath!, arguments, workDirectory, OnTrainerOutput, cancellationToken,
                    _options.TrainerPriority, _stopEarly.Token, _options.StopGrace).ConfigureAwait(false);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new JobFailureException(JobErrorCodes.TrainerNotFound, $"The trainer '{_options.TrainerPath}' could not be started: {e.Message}");
            }

            if (exitCode == 0 || _stopEarly.IsCancellationRequested)
            {
                _writer.TrySendText(JobMessages.Format(JobMessages.TrainJobEnd, stem));
            }
            else
            {
                failed++;
                _writer.TrySendText(JobMessages.Format(JobMessages.TrainJobError, stem, exitCode.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                Emit($"Config {stem} failed with exit code {exitCode}");
            }
        }
        return failed;
    }

    // Lightning's progress lines carry the epoch but not the total; the config says how many there will be.
    private static readonly System.Text.RegularExpressions.Regex MaxEpochsSetting =
        new(@"[""']?max_epochs[""']?\s*[:=]\s*(\d+)", System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    private static int? MaxEpochsFromConfig(string configPath)
    {
        try
        {
            if (!File.Exists(configPath) || new FileInfo(configPath).Length > 4 * 1024 * 1024) return null;
            var match = MaxEpochsSetting.Match(File.ReadAllText(configPath));
            return match.Success && int.TryParse(match.Groups[1].Value, out var n) ? n : null;
        }
        catch (IOException) { return null; }
    }

    private void OnTrainerOutput(TrainerOutput output)
    {
        // Classic framing: whole lines end with '\n', progress-bar updates start with '\r'.
        if (!_clientGone) _writer.TrySendText(output.IsCarriageReturnUpdate ? "\r" + output.Text : output.Text + "\n");
        if (!output.IsCarriageReturnUpdate)
        {
            AppendJobLog(output.Text);
            LogLine?.Invoke(output.Text);
        }

        var info = TrainerOutputParser.Parse(output.Text);
        if (info.IsEmpty) return;
        var epochChanged = info.Epoch is { } e && e != Progress.Epoch;
        if (info.Epoch is { } epoch) Progress.Epoch = epoch;
        if (info.EpochCount is { } count) Progress.EpochCount = count;
        if (info.ValLoss is { } val) Progress.ValLoss = val;
        if (info.Loss is { } loss)
        {
            Progress.Loss = loss;
            // One point per epoch: the last loss seen in it, so the history is a loss curve.
            var history = Progress.LossHistory;
            if (epochChanged || history.Length == 0) history = history.Append(loss).TakeLast(MaxLossHistory).ToArray();
            else history[^1] = loss;
            Progress.LossHistory = history;
        }
        PublishProgress(force: epochChanged);
    }

    private void PublishProgress(bool force)
    {
        var now = Environment.TickCount64;
        if (!force && now - Interlocked.Read(ref _lastProgressTicks) < ProgressInterval.TotalMilliseconds) return;
        Interlocked.Exchange(ref _lastProgressTicks, now);
        if (_extensions && !_clientGone) _writer.TrySendText(JobExtensions.ProgressMessage(Progress));
        ProgressChanged?.Invoke(Progress);
    }

    /// <summary>
    /// Zips the models (trained_&lt;package&gt;.zip), keeps them with the job log for collection, and sends them to the client
    /// when it is still there. Results that reached the client (it closed the channel cleanly after the last byte was
    /// acknowledged) are not kept; with -DataRoot a copy also stays in &lt;root&gt;/jobs/&lt;job id&gt;/.
    /// </summary>
    private async Task DeliverResultsAsync(string workDirectory, string uploadedName, WorkerJobEnd end, string? error, CancellationToken cancellationToken)
    {
        SetPhase("download");
        var stem = uploadedName.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) ? uploadedName[..^4] : uploadedName;
        var zipName = FileMetaInfo.WireSafeName($"trained_{stem}.zip");
        var zipPath = Path.Combine(_jobDirectory, zipName);
        PackageArchive.CreateFromDirectoryContents(Path.Combine(workDirectory, _outputDirectory), zipPath);
        if (_accepted) KeepResults(end, error, zipName);
        if (_clientGone || _channel.State != DataChannelState.Open) return;

        var delivered = false;
        try
        {
            await SendFileAsync(zipPath, zipName, cancellationToken).ConfigureAwait(false);
            delivered = await WaitForClientToFinishAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is InvalidOperationException or IOException or ObjectDisposedException && _accepted)
        {
            Emit($"The client left during the download; the results stay here for collection ({e.Message}).");
        }
        if (delivered && _resultsKept)
        {
            _options.Results!.Remove(JobId);
            _resultsKept = false;
        }
    }

    private void KeepResults(WorkerJobEnd end, string? error, string zipName)
    {
        if (_options.Results is not { } store) return;
        var state = end switch { WorkerJobEnd.Succeeded => JobStates.Succeeded, WorkerJobEnd.Cancelled => JobStates.Cancelled, _ => JobStates.Failed };
        AppendJobLog($"Job {JobId} ended: {state}{(error is null ? "" : " (" + error + ")")}");
        CloseJobLog();
        // Only what is sent goes in the folder's keep: the unpacked package is removed now.
        TryDeleteDirectory(Path.Combine(_jobDirectory, "package"));
        TryDeleteDirectory(Path.Combine(_jobDirectory, "resume"));
        var kept = new KeptResults
        {
            JobId = JobId, State = state, Error = error, PackageName = Progress.PackageName,
            FinishedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Files = new[] { zipName, JobLogName },
        };
        FolderLock? folderLock;
        lock (_gate) { folderLock = _jobFolderLock; _jobFolderLock = null; }
        store.Keep(_jobDirectory, kept, folderLock);
        _resultsKept = true;
        lock (_gate) _record.ResultsExpireAt = store.ExpiresAt(kept).ToUnixTimeMilliseconds();
        if (_options.DataRoot is { } root) CopyToDataRoot(root, kept.Files);
    }

    private void CopyToDataRoot(string root, IEnumerable<string> files)
    {
        try
        {
            var target = Directory.CreateDirectory(Path.Combine(root, DataRootPaths.JobsFolder, JobId)).FullName;
            foreach (var file in files) File.Copy(Path.Combine(_jobDirectory, file), Path.Combine(target, file), overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Emit($"The results could not be copied to the data root: {e.Message}");
        }
    }

    private void TryDeleteDirectory(string path)
    {
        try { if (Directory.Exists(path)) Directory.Delete(path, recursive: true); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Write(LogLevel.Warning, "worker-job", $"could not remove {path}: {e.Message}");
        }
    }

    private Task SendFileAsync(string path, string wireName, CancellationToken cancellationToken)
    {
        Emit($"Sending results {wireName} ({new FileInfo(path).Length / (1024.0 * 1024.0):F1} MB)");
        return ChannelDelivery.SendFileAsync(_channel, _writer, path, wireName, _outputDirectory, _options.ChunkSize, _extensions, cancellationToken);
    }

    /// <summary>
    /// Lets the last bytes reach the client: waits until it confirms them (feature "release": SLEAPRTC_COLLECTED, the channel
    /// stays open for SLEAPRTC_RELEASED), or else until they are acknowledged and the client closes.
    /// </summary>
    /// <returns>True when the client has everything (it said so, or closed the channel cleanly after the last byte was acknowledged).</returns>
    private async Task<bool> WaitForClientToFinishAsync(CancellationToken cancellationToken)
    {
        bool delivered;
        if (_clientAwaitsRelease)
        {
            try { delivered = await _lastWordConfirmed.Task.WaitAsync(_options.ResultsDrainTimeout, cancellationToken).ConfigureAwait(false); }
            catch (Exception e) when (e is TimeoutException or OperationCanceledException) { delivered = false; }
        }
        else delivered = await ChannelDelivery.WaitForCleanCloseAsync(_channel, _options.ResultsDrainTimeout, () => _closedCleanly, cancellationToken).ConfigureAwait(false);
        _log.Write(LogLevel.Debug, "worker-job", $"job {JobId} finished; channel {_channel.State}");
        return delivered;
    }
}
