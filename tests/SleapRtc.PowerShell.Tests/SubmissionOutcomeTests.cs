using System.IO.Compression;
using System.Management.Automation;
using System.Text.RegularExpressions;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// What a script sees when a job ends: failed and cancelled jobs are errors (-ErrorAction Stop, $?, try/catch, job
/// state) that still carry the result; models never overwrite each other; bad packages and output paths are refused
/// before anything connects; progress reads right. Real server, real worker, stand-in trainer.
/// </summary>
public sealed class SubmissionOutcomeTests : IDisposable
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromSeconds(90);
    private readonly HostedPowerShell _ps = new();
    private readonly string _work = TestEnvironment.NewDirectory("outcomes");
    private readonly PSObject _worker;

    public SubmissionOutcomeTests()
    {
        _ps.Run($"""
            $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
            $room = New-SleapRoom -Server $server.Url
            $smi = '{TestEnvironment.Fixture("nvidia-smi")}'
            $nn = '{TestEnvironment.Fixture("sleap-nn")}'
            """).ThrowOnError();
        _worker = _ps.Run($"$room | Start-SleapWorker -GpuId 0 -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory '{_work}'").ThrowOnError()
            .Output.Single(o => o.BaseObject.GetType().FullName == "SleapRtc.WorkerSession");
    }

    public void Dispose() => _ps.Dispose();

    private Dictionary<string, object?> Variables(string package, string output) =>
        new() { ["worker"] = _worker.BaseObject, ["package"] = package, ["out"] = output };

    /// <summary>A SLEAP-shaped package whose train script names a config that is not in it: the trainer exits with 2.</summary>
    private string FailingPackage(string name)
    {
        var path = Path.Combine(_work, name + ".zip");
        using var zip = ZipFile.Open(path, ZipArchiveMode.Create);
        using (var writer = new StreamWriter(zip.CreateEntry($"{name}/train-script.sh").Open()))
            writer.Write("#!/bin/bash\nsleap-nn train --config-name missing.json --config-dir .\n");
        using (var writer = new StreamWriter(zip.CreateEntry($"{name}/labels.v001.pkg.slp").Open()))
            writer.Write(new string('x', 1024));
        return path;
    }

    [Fact]
    public void A_failed_training_is_an_error_that_Stop_throws_with_exit_code_log_and_the_result()
    {
        var variables = Variables(FailingPackage("broken"), Path.Combine(_work, "broken-out"));
        var caught = _ps.Run("""
            try {
                $result = Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath $out -ErrorAction Stop
                'did not throw'
            } catch {
                $_.FullyQualifiedErrorId
                $_.TargetObject.GetType().FullName
                $_.TargetObject.Status
                $_.TargetObject.ExitCode
                $_.Exception.Message
            }
            """, JobTimeout, variables).ThrowOnError().Output.Select(o => o?.ToString()).ToList();
        Assert.NotEqual("did not throw", caught[0]);
        Assert.StartsWith("TrainingJobFailed,", caught[0]);
        Assert.Equal("SleapRtc.TrainingResult", caught[1]);
        Assert.Equal("Failed", caught[2]);
        Assert.Equal("2", caught[3]);
        var message = caught[4]!;
        Assert.Contains("exited with code 2", message);
        Assert.Contains("Last lines of the worker's log", message);
        Assert.Contains("Training failed: missing", message);

        // Without -ErrorAction Stop: the result is still output, $? is False and the error names the result.
        var plain = _ps.Run("""
            $r = Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath $out -ErrorAction SilentlyContinue -ErrorVariable failure
            $ok = $?
            $r.Status; $ok; $failure.Count; [object]::ReferenceEquals($failure[0].TargetObject, $r)
            """, JobTimeout, variables).ThrowOnError().Output.Select(o => o.ToString()).ToList();
        Assert.Equal(new[] { "Failed", "False", "1", "True" }, plain);
    }

    [Fact]
    public void A_stopped_job_is_Stopped_with_a_TrainingJobCancelled_error_and_a_child_job_holding_the_streams()
    {
        var package = TestEnvironment.BuildPackage(_work, "stopped", ("config.json", 400));
        var variables = Variables(package, Path.Combine(_work, "stopped-out"));
        _ps.Run("$job = Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath $out -AsJob", variables: variables).ThrowOnError();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (_ps.Run("@($job.ChildJobs[0].Progress | Where-Object StatusDescription -eq 'Training').Count").Single<int>() == 0)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The job never reported training progress on its child job.");
            Thread.Sleep(100);
        }
        var seen = _ps.Run("""
            Stop-Job $job
            $job.State.ToString()
            $job.ChildJobs.Count
            $result = Receive-Job $job -ErrorVariable failure -ErrorAction SilentlyContinue
            $result.Status
            $failure[0].FullyQualifiedErrorId
            $failure[0].TargetObject.Status
            """).ThrowOnError().Output.Select(o => o.ToString()).ToList();
        Assert.Equal("Stopped", seen[0]);
        Assert.Equal("1", seen[1]);
        Assert.Equal("Cancelled", seen[2]);
        Assert.StartsWith("TrainingJobCancelled", seen[3]);
        Assert.Equal("Cancelled", seen[4]);
    }

    [Fact]
    public void A_failed_job_run_with_AsJob_ends_Failed_and_Receive_Job_gives_result_and_error()
    {
        var variables = Variables(FailingPackage("broken-job"), Path.Combine(_work, "broken-job-out"));
        var seen = _ps.Run("""
            $job = Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath $out -AsJob
            $null = Wait-Job $job -Timeout 80
            $job.State.ToString()
            $result = Receive-Job $job -ErrorVariable failure -ErrorAction SilentlyContinue
            $result.Status
            $failure[0].FullyQualifiedErrorId
            """, JobTimeout, variables).ThrowOnError().Output.Select(o => o.ToString()).ToList();
        Assert.Equal(new[] { "Failed", "Failed" }, seen.Take(2));
        Assert.StartsWith("TrainingJobFailed", seen[2]);
    }

    [Fact]
    public void Two_jobs_with_one_OutputPath_get_folders_of_their_own_and_progress_reads_right()
    {
        var package = TestEnvironment.BuildPackage(_work, "twice", ("centroid.json", 3), ("centered_instance.json", 3));
        var output = Path.Combine(_work, "shared-out");
        var variables = Variables(package, output);
        var first = _ps.Run("Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath $out", JobTimeout, variables);
        var firstResult = first.SingleOf("SleapRtc.TrainingResult");
        WaitUntilAvailable(); // the worker says so once the first client has closed the channel
        var second = _ps.Run("Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath $out", JobTimeout, variables)
            .SingleOf("SleapRtc.TrainingResult");

        var folders = new[] { firstResult.Text("OutputPath")!, second.Text("OutputPath")! };
        Assert.NotEqual(folders[0], folders[1]);
        foreach (var (folder, result) in folders.Zip(new[] { firstResult, second }))
        {
            Assert.Equal(output, Path.GetDirectoryName(folder));
            Assert.Matches(@"^twice-\d{8}-\d{6}-[0-9a-zA-Z]{1,8}$", Path.GetFileName(folder));
            var models = (string[])result.Prop("ModelPaths")!;
            Assert.NotEmpty(models);
            Assert.All(models, m => Assert.StartsWith(folder + Path.DirectorySeparatorChar, m));
            Assert.All(models, m => Assert.True(Directory.Exists(m) || File.Exists(m), m));
        }
        Assert.Equal(2, Directory.GetDirectories(output).Length);

        // ToString says what happened, to which job, and where the models are.
        var text = firstResult.BaseObject.ToString()!;
        Assert.Contains("Succeeded", text);
        Assert.Contains(firstResult.Text("JobId")!, text);
        Assert.Contains(folders[0], text);

        // Progress: no "config 0 of 0 ()", no "0.0 of 0.0 MB", and the percentage covers the whole job.
        var operations = first.Progress.Where(p => p.RecordType != ProgressRecordType.Completed).ToList();
        Assert.DoesNotContain(operations, p => p.CurrentOperation?.Contains("config 0", StringComparison.Ordinal) == true);
        Assert.DoesNotContain(operations, p => p.CurrentOperation?.Contains("of 0.0 MB", StringComparison.Ordinal) == true);
        Assert.Contains(operations, p => p.StatusDescription == "Downloading" && Regex.IsMatch(p.CurrentOperation ?? "", @"of [0-9.]*[1-9][0-9.]* [KM]B"));
        var training = operations.Where(p => p.StatusDescription == "Training" && p.PercentComplete >= 0).Select(p => p.PercentComplete).ToList();
        Assert.NotEmpty(training);
        Assert.True(training.Zip(training.Skip(1)).All(pair => pair.Second >= pair.First), "percentages went back: " + string.Join(", ", training));
        Assert.Contains(training, p => p >= 50); // the second config continues from the first one's half
    }

    private void WaitUntilAvailable()
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (_ps.Run("(Get-SleapWorker -RoomId $room.RoomId -Status *).Status").ThrowOnError().Output.Select(o => o.ToString()).Any(s => s != "available"))
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("The worker did not become available again within 30 s.");
            Thread.Sleep(100);
        }
    }

    [Fact]
    public void A_package_that_is_not_a_zip_is_refused_before_connecting_and_leaves_no_folder()
    {
        var notZip = Path.Combine(_work, "notes.zip");
        File.WriteAllText(notZip, "not a zip");
        var output = Path.Combine(_work, "never-created");
        // An unreachable server: had the cmdlet connected first, the error would be about the server.
        var error = _ps.Run($"Submit-SleapTraining -PackagePath '{notZip}' -RoomId r1 -Token t -Server ws://127.0.0.1:9 -AutoSelect -OutputPath '{output}'").FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("InvalidTrainingPackage,", error!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.InvalidData, error.CategoryInfo.Category);
        Assert.False(Directory.Exists(output));

        var noScript = Path.Combine(_work, "no-script.zip");
        using (var zip = ZipFile.Open(noScript, ZipArchiveMode.Create))
        using (var writer = new StreamWriter(zip.CreateEntry("no-script/labels.slp").Open()))
            writer.Write("labels");
        error = _ps.Run($"Submit-SleapTraining -PackagePath '{noScript}' -RoomId r1 -Token t -Server ws://127.0.0.1:9 -AutoSelect -OutputPath '{output}'").FirstError;
        Assert.StartsWith("InvalidTrainingPackage,", error!.FullyQualifiedErrorId);
        Assert.Contains("train-script.sh", error.Exception.Message);
        Assert.False(Directory.Exists(output));
    }

    [Fact]
    public void An_output_path_that_cannot_be_written_is_a_clear_error_before_connecting()
    {
        var package = TestEnvironment.BuildPackage(_work, "fine", ("config.json", 1));
        var file = Path.Combine(_work, "a-file");
        File.WriteAllText(file, "in the way");
        var error = _ps.Run($"Submit-SleapTraining -PackagePath '{package}' -RoomId r1 -Token t -Server ws://127.0.0.1:9 -AutoSelect -OutputPath '{Path.Combine(file, "models")}'").FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("OutputPathNotWritable,", error!.FullyQualifiedErrorId);
        Assert.IsNotType<DirectoryNotFoundException>(error.Exception);
        Assert.Contains("a-file", error.Exception.Message);
    }
}
