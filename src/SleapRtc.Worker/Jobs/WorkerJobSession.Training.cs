using SleapRtc.Protocol.Jobs;
using SleapRtc.Protocol.Logging;
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
    private string Unpack(FileReceiver package, string scriptName)
    {
        var extractTo = Path.Combine(_jobDirectory, "package");
        try
        {
            PackageArchive.ExtractSafely(package.Path, extractTo, _options.PackageLimits);
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
            throw new JobFailureException(JobErrorCodes.BadPackage, $"The package '{package.Meta.Name}' is not a valid zip file ({e.Message}).");
        }
        finally
        {
            // The zip is no longer needed; free the disk space now rather than at the end.
            try { File.Delete(package.Path); } catch (IOException) { }
        }
        var training = scriptName == TrainScript.FileName;
        return FindWorkDirectory(extractTo, Path.GetFileNameWithoutExtension(package.Meta.Name), scriptName)
            ?? throw new JobFailureException(training ? JobErrorCodes.NoTrainScript : JobErrorCodes.NoTrackScript,
                $"The package has no {scriptName} (looked in its top folder and in '{Path.GetFileNameWithoutExtension(package.Meta.Name)}/'). " +
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

    /// <returns>How many configs failed.</returns>
    private async Task<int> TrainAllAsync(string workDirectory, IReadOnlyList<string> configs, CancellationToken cancellationToken)
    {
        var failed = 0;
        Progress.ConfigCount = configs.Count;
        Progress.StartedAt = DateTimeOffset.UtcNow;
        for (var i = 0; i < configs.Count; i++)
        {
            var stem = TrainScript.ConfigStem(configs[i]);
            Progress.ConfigIndex = i + 1;
            Progress.ConfigName = stem;
            Progress.Epoch = 0;
            Progress.EpochCount = 0;
            Progress.Loss = null;
            Progress.ValLoss = null;
            Progress.LossHistory = Array.Empty<double>();
            Progress.EpochCount = MaxEpochsFromConfig(Path.Combine(workDirectory, configs[i])) ?? 0;
            SetPhase("training");
            _writer.SendText(JobMessages.Format(JobMessages.TrainJobStart, stem));
            Emit($"Training config {i + 1} of {configs.Count}: {configs[i]}");

            var arguments = TrainerProcess.BuildArguments(configs[i], _outputDirectory);
            int exitCode;
            try
            {
                exitCode = await TrainerProcess.RunAsync(_options.TrainerPath!, arguments, workDirectory, OnTrainerOutput, cancellationToken).ConfigureAwait(false);
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new JobFailureException(JobErrorCodes.TrainerNotFound, $"The trainer '{_options.TrainerPath}' could not be started: {e.Message}");
            }

            if (exitCode == 0)
            {
                _writer.SendText(JobMessages.Format(JobMessages.TrainJobEnd, stem));
            }
            else
            {
                failed++;
                _writer.SendText(JobMessages.Format(JobMessages.TrainJobError, stem, exitCode.ToString(System.Globalization.CultureInfo.InvariantCulture)));
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
        _writer.TrySendText(output.IsCarriageReturnUpdate ? "\r" + output.Text : output.Text + "\n");
        if (!output.IsCarriageReturnUpdate) LogLine?.Invoke(output.Text);

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
        if (_extensions) _writer.TrySendText(JobExtensions.ProgressMessage(Progress));
        ProgressChanged?.Invoke(Progress);
    }

    private async Task SendResultsAsync(string workDirectory, string uploadedName, CancellationToken cancellationToken)
    {
        SetPhase("download");
        var stem = uploadedName.EndsWith(".zip", StringComparison.OrdinalIgnoreCase) ? uploadedName[..^4] : uploadedName;
        var zipName = FileMetaInfo.WireSafeName($"trained_{stem}.zip");
        var zipPath = Path.Combine(_jobDirectory, zipName);
        PackageArchive.CreateFromDirectoryContents(Path.Combine(workDirectory, _outputDirectory), zipPath);
        await SendFileAsync(zipPath, zipName, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>The classic result transfer: FILE_META::name:size:outdir, chunks, END_OF_FILE (SHA-256 with our clients).</summary>
    private async Task SendFileAsync(string path, string wireName, CancellationToken cancellationToken)
    {
        var size = new FileInfo(path).Length;
        var chunk = Math.Max(1024, Math.Min(_options.ChunkSize, _channel.MaxMessageSize > 0 ? _channel.MaxMessageSize : _options.ChunkSize));
        Emit($"Sending results {wireName} ({size / (1024.0 * 1024.0):F1} MB)");
        using var source = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16, FileOptions.SequentialScan);
        await FileSender.SendAsync(source, new FileMetaInfo(wireName, size, _outputDirectory), _writer.SendText,
            _writer.SendBinaryAsync, chunk, _extensions, null, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Lets the last bytes reach the client: waits until they are acknowledged or the client closes.</summary>
    private async Task WaitForClientToFinishAsync(CancellationToken cancellationToken)
    {
        var deadline = Environment.TickCount64 + (long)_options.ResultsDrainTimeout.TotalMilliseconds;
        try
        {
            while (_channel.State == DataChannelState.Open && Environment.TickCount64 < deadline && !cancellationToken.IsCancellationRequested)
                await Task.Delay(20, cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) { }
        _log.Write(LogLevel.Debug, "worker-job", $"job {JobId} finished; channel {_channel.State}");
    }
}
