using System.Management.Automation;

namespace SleapRtc.PowerShell.Tests;

/// <summary>
/// Workers and clients end to end through the public cmdlets: a real server on loopback, real workers (recorded
/// nvidia-smi, stand-in trainer) and real WebRTC data channels between them.
/// </summary>
public sealed class WorkerCmdletTests : IDisposable
{
    private static readonly TimeSpan JobTimeout = TimeSpan.FromSeconds(90);
    private readonly HostedPowerShell _ps = new();
    private readonly string _work = TestEnvironment.NewDirectory("workers");

    public WorkerCmdletTests()
    {
        _ps.Run($"""
            $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
            $room = New-SleapRoom -Server $server.Url
            $smi = '{TestEnvironment.Fixture("nvidia-smi")}'
            $nn = '{TestEnvironment.Fixture("sleap-nn")}'
            """).ThrowOnError();
    }

    public void Dispose() => _ps.Dispose();

    private PSObject StartWorker(int gpuId) =>
        _ps.Run($"$room | Start-SleapWorker -GpuId {gpuId} -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory '{_work}'").ThrowOnError()
            .Output.Single(o => o.BaseObject.GetType().FullName == "SleapRtc.WorkerSession");

    [Fact]
    public void Scenario01_02_Start_prints_the_banner_and_workers_of_one_room_are_discovered_with_their_GPUs()
    {
        var started = _ps.Run($"$room | Start-SleapWorker -GpuId 1 -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory '{_work}'").ThrowOnError();
        var session = started.SingleOf("SleapRtc.WorkerSession");
        var banner = string.Join("\n", started.Information.Select(i => i.MessageData.ToString()));
        Assert.Contains("Session string for DIRECT connection to this worker:", banner);
        Assert.Contains(session.Text("SessionString")!, banner);
        Assert.Contains("Room ID: " + session.Text("RoomId"), banner);
        Assert.Equal("NVIDIA RTX A6000", session.Text("GpuModel"));
        StartWorker(0);

        var workers = _ps.Run("Get-SleapWorker -RoomId $room.RoomId").ThrowOnError().Output;
        Assert.Equal(2, workers.Count);
        Assert.All(workers, w => Assert.Equal("SleapRtc.WorkerInfo", w.BaseObject.GetType().FullName));
        Assert.Equal(new[] { 24564L, 49140L }, workers.Select(w => (long)w.Prop("GpuMemoryMB")!).OrderBy(m => m));
        Assert.All(workers, w => Assert.Equal("available", w.Text("Status")));

        // A room object pipes in: RoomId, Token and Server bind by property name.
        Assert.Equal(2, _ps.Run("$room | Get-SleapWorker").ThrowOnError().Output.Count);

        var big = _ps.Run("Get-SleapWorker -RoomId $room.RoomId -MinGpuMemoryMB 30000").ThrowOnError().Output;
        Assert.Equal("NVIDIA RTX A6000", Assert.Single(big).Text("GpuModel"));

        var local = _ps.Run("Get-SleapWorker -Local").ThrowOnError().Output;
        Assert.Equal(2, local.Count);
        Assert.Contains(session.Text("PeerId"), Complete("Submit-SleapTraining -RoomId $room.RoomId -WorkerId "));
    }

    [Fact]
    public void A_worker_started_with_a_small_MaxUnpackedSize_refuses_a_larger_package_and_says_which_limit()
    {
        var session = _ps.Run($"$room | Start-SleapWorker -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory '{_work}' -MaxUnpackedSize 1MB -MaxPackageRatio 50")
            .ThrowOnError().SingleOf("SleapRtc.WorkerSession");
        var package = TestEnvironment.BuildPackage(Path.Combine(_work, "pkg"), "big", 2_000_000, ("config.json", 1));
        var error = _ps.Run($"Submit-SleapTraining -PackagePath '{package}' -SessionString '{session.Text("SessionString")}' -OutputPath '{Path.Combine(_work, "big-out")}'").FirstError;
        Assert.NotNull(error);
        Assert.Contains("1 MiB, the unpacked size limit", error!.ToString());
        Assert.Contains("-MaxUnpackedSize", error.ToString());
        Assert.NotNull(_ps.Run($"Start-SleapWorker -WorkingDirectory '{_work}' -MaxPackageRatio 0").FirstError); // below 1:1 makes no sense
    }

    [Fact]
    public void Without_server_or_room_a_worker_uses_the_session_server_creates_a_room_and_saves_it()
    {
        var result = _ps.Run($"Start-SleapWorker -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory '{_work}'").ThrowOnError();
        var session = result.SingleOf("SleapRtc.WorkerSession");
        Assert.Equal(_ps.Run("$server.Url").Single<string>(), session.Text("Server"));
        Assert.NotEqual(_ps.Run("$room.RoomId").Single<string>(), session.Text("RoomId"));
        Assert.DoesNotContain(result.Information, i => i.MessageData.ToString()!.Contains("embedded signaling server"));
        // The new room's credentials were saved: -RoomId alone is enough afterwards.
        var found = _ps.Run("Get-SleapWorker -RoomId $id", variables: new Dictionary<string, object?> { ["id"] = session.Text("RoomId") }).SingleOf("SleapRtc.WorkerInfo");
        Assert.Equal(session.Text("PeerId"), found.Text("PeerId"));
    }

    [Fact]
    public void The_headline_pipeline_trains_and_returns_the_models()
    {
        StartWorker(0);
        var big = StartWorker(1);
        var package = TestEnvironment.BuildPackage(_work, "labels.v001", ("config.json", 2));
        var models = Path.Combine(_work, "models");
        var result = _ps.Run($"""
            Get-SleapWorker -RoomId $room.RoomId | Sort-Object GpuMemoryMB -Descending | Select-Object -First 1 |
                Submit-SleapTraining -PackagePath '{package}' -OutputPath '{models}' -Verbose
            """, JobTimeout);
        var training = result.SingleOf("SleapRtc.TrainingResult");
        Assert.Equal("Succeeded", training.Text("Status"));
        Assert.Equal(big.Text("PeerId"), training.Text("WorkerId")); // the most GPU memory (GPU 1, 49140 MB)
        var paths = (string[])training.Prop("ModelPaths")!;
        Assert.NotEmpty(paths);
        Assert.All(paths, p => Assert.True(File.Exists(p) || Directory.Exists(p), p));
        Assert.Contains(result.Verbose, line => line.Contains("Epoch", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(result.Progress, p => p.RecordType == ProgressRecordType.Completed);
        Assert.Contains(result.Progress, p => p.StatusDescription == "Uploading");

        // Back to available once the models are home (the worker publishes it after the client closed the channel).
        WaitForStatus("available", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void AsJob_returns_a_job_that_Wait_Receive_and_Get_Job_understand()
    {
        var worker = StartWorker(2);
        var package = TestEnvironment.BuildPackage(_work, "job", ("config.json", 1));
        var result = _ps.Run($$"""
            $job = Submit-SleapTraining -PackagePath '{{package}}' -SessionString $worker.SessionString -OutputPath '{{Path.Combine(_work, "job-out")}}' -AsJob
            if (-not (Get-Job -Id $job.Id)) { throw 'job not registered' }
            $null = Wait-Job $job -Timeout 80
            $job.State.ToString()
            Receive-Job $job
            """, JobTimeout, new Dictionary<string, object?> { ["worker"] = worker.BaseObject });
        result.ThrowOnError();
        Assert.Equal("Completed", result.Output[0].ToString());
        var training = Assert.Single(result.Output.Skip(1));
        Assert.Equal("Succeeded", training.Text("Status"));
    }

    [Fact]
    public void Scenario04_Auto_selection_picks_the_most_GPU_memory_and_says_which()
    {
        StartWorker(2);
        var best = StartWorker(1);
        var selection = _ps.Run("Select-SleapWorker -RoomId $room.RoomId -Auto");
        var chosen = selection.SingleOf("SleapRtc.WorkerInfo");
        Assert.Equal(best.Text("PeerId"), chosen.Text("PeerId"));
        Assert.Contains(selection.Information, i => i.MessageData.ToString()!.Contains("Auto-selected worker " + best.Text("PeerId")));
    }

    [Fact]
    public void Scenario03_Interactive_selection_lists_workers_refreshes_on_r_and_takes_a_number()
    {
        StartWorker(0);
        _ps.Host.TestUI.Answers.Enqueue("r");
        _ps.Host.TestUI.Answers.Enqueue("7");
        _ps.Host.TestUI.Answers.Enqueue("1");
        var chosen = _ps.Run("Select-SleapWorker -RoomId $room.RoomId").SingleOf("SleapRtc.WorkerInfo");
        var transcript = _ps.Host.TestUI.Transcript;
        Assert.Contains("Found 1 available worker", transcript);
        Assert.Contains("Refreshing worker list", transcript);
        Assert.Contains("Invalid selection", transcript);
        Assert.Contains("GPU: NVIDIA GeForce RTX 4090 (24564 MB)", transcript);
        Assert.Equal("NVIDIA GeForce RTX 4090", chosen.Text("GpuModel"));
    }

    [Fact]
    public void Without_an_interactive_host_selection_names_the_switches_to_use()
    {
        using var service = new HostedPowerShell(interactiveHost: false);
        var error = service.Run("Select-SleapWorker -RoomId some-room -Token t -Server ws://127.0.0.1:9").FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("NoInteractiveHost,", error!.FullyQualifiedErrorId);
        Assert.Contains("-Auto", error.ErrorDetails.RecommendedAction);
        Assert.Contains("-WorkerId", error.ErrorDetails.RecommendedAction);
    }

    [Fact]
    public void Scenario08_An_empty_room_gives_a_clear_no_workers_error()
    {
        var error = _ps.Run("Select-SleapWorker -RoomId $room.RoomId -Auto").FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("NoWorkersAvailable,", error!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceUnavailable, error.CategoryInfo.Category);
        Assert.Contains("No available workers found in room", error.ErrorDetails.Message);
        Assert.DoesNotContain("busy", error.ErrorDetails.Message);
    }

    [Fact]
    public void Scenario08_Invalid_credentials_are_reported_without_the_token()
    {
        var result = _ps.Run("Get-SleapWorker -RoomId $room.RoomId -Token not-the-token -Server $server.Url");
        var error = Assert.Single(result.Errors);
        Assert.StartsWith("InvalidRoomCredentials,", error.FullyQualifiedErrorId);
        Assert.Contains("Invalid room credentials", error.ErrorDetails.Message);
        Assert.DoesNotContain("not-the-token", error.ToString());
    }

    [Fact]
    public void Stop_worker_takes_piped_sessions_and_supports_WhatIf()
    {
        StartWorker(0);
        _ps.Run("Get-SleapWorker -Local | Stop-SleapWorker -WhatIf").ThrowOnError();
        Assert.Single(_ps.Run("Get-SleapWorker -Local").ThrowOnError().Output);
        _ps.Run("Get-SleapWorker -Local | Stop-SleapWorker").ThrowOnError();
        Assert.Empty(_ps.Run("Get-SleapWorker -Local").ThrowOnError().Output);
        Assert.Empty(_ps.Run("Get-SleapWorker -RoomId $room.RoomId -Status *").ThrowOnError().Output);
    }

    [Fact]
    public void A_missing_package_is_a_PackageNotFound_error()
    {
        var error = _ps.Run("Submit-SleapTraining -PackagePath ./does-not-exist.zip -RoomId $room.RoomId -AutoSelect").FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("PackageNotFound,", error!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ObjectNotFound, error.CategoryInfo.Category);
    }

    [Fact]
    public void PackagePath_completes_zip_files()
    {
        TestEnvironment.BuildPackage(_work, "complete-me", ("config.json", 1));
        File.WriteAllText(Path.Combine(_work, "notes.txt"), "not a package");
        var matches = Complete($"Set-Location '{_work}'; Submit-SleapTraining -PackagePath ./comp", afterSetLocation: true);
        Assert.Contains(matches, m => m.EndsWith("complete-me.zip", StringComparison.Ordinal));
        Assert.DoesNotContain(matches, m => m.EndsWith("notes.txt", StringComparison.Ordinal));
    }

    [Fact]
    public void Scenario09_10_Status_goes_busy_during_a_job_a_second_client_is_refused_and_Stop_Job_frees_the_worker()
    {
        var worker = StartWorker(0);
        var package = TestEnvironment.BuildPackage(_work, "long", ("config.json", 400));
        var variables = new Dictionary<string, object?> { ["worker"] = worker.BaseObject, ["package"] = package, ["out"] = Path.Combine(_work, "long-out") };
        _ps.Run("$job = Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath $out -AsJob", variables: variables).ThrowOnError();
        WaitForStatus("busy", TimeSpan.FromSeconds(30));

        // Test 9: a busy worker refuses with the classic worker_busy error; the client says what to do.
        var refused = _ps.Run("Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath $out", TimeSpan.FromSeconds(60), variables);
        var error = refused.FirstError;
        Assert.NotNull(error);
        Assert.StartsWith("WorkerBusy,", error!.FullyQualifiedErrorId);
        Assert.Equal(ErrorCategory.ResourceBusy, error.CategoryInfo.Category);
        Assert.Contains("busy", error.ErrorDetails.Message);
        var roomId = _ps.Run("$room.RoomId").Single<string>();
        Assert.Contains(roomId, error.ErrorDetails.Message);
        Assert.Contains("Get-SleapWorker -RoomId " + roomId, error.ErrorDetails.RecommendedAction);
        Assert.DoesNotContain("--", error.ErrorDetails.Message + error.ErrorDetails.RecommendedAction);
        Assert.Equal("Running", _ps.Run("$job.State.ToString()").Single<string>());

        // With every worker busy, NoWorkersAvailable says so instead of asking to start workers.
        foreach (var script in new[] { "Select-SleapWorker -RoomId $room.RoomId -Auto", "Submit-SleapTraining -PackagePath $package -RoomId $room.RoomId -AutoSelect -OutputPath $out" })
        {
            var none = _ps.Run(script, TimeSpan.FromSeconds(60), variables).FirstError;
            Assert.NotNull(none);
            Assert.StartsWith("NoWorkersAvailable,", none!.FullyQualifiedErrorId);
            Assert.Contains("busy", none.ErrorDetails.Message);
            Assert.DoesNotContain("Ensure workers are running", none.ErrorDetails.RecommendedAction);
        }

        // Stop-Job cancels the job on the worker, which becomes available again.
        _ps.Run("Stop-Job $job").ThrowOnError();
        Assert.Equal("Stopped", _ps.Run("$job.State.ToString()").Single<string>());
        WaitForStatus("available", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void Ctrl_C_during_a_submission_returns_quickly_and_the_worker_becomes_available()
    {
        var worker = StartWorker(1);
        var package = TestEnvironment.BuildPackage(_work, "cancel-me", ("config.json", 400));
        using var client = new HostedPowerShell();
        using var running = client.Start($"Submit-SleapTraining -PackagePath '{package}' -SessionString $session -OutputPath '{Path.Combine(_work, "cancelled")}'",
            new Dictionary<string, object?> { ["session"] = worker.Text("SessionString") });
        WaitForStatus("busy", TimeSpan.FromSeconds(30));
        var took = running.Stop(TimeSpan.FromSeconds(10));
        Assert.True(took < TimeSpan.FromSeconds(3), $"Ctrl+C took {took.TotalMilliseconds} ms");
        WaitForStatus("available", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public void Scenario06_status_lifecycle_and_the_Job_view_show_a_running_job_advancing()
    {
        var worker = StartWorker(0);
        var peerId = worker.Text("PeerId")!;
        var package = TestEnvironment.BuildPackage(_work, "viewed", ("config.json", 400));
        var variables = new Dictionary<string, object?> { ["worker"] = worker.BaseObject, ["package"] = package, ["out"] = Path.Combine(_work, "viewed-out") };
        // Format-Table is not part of the hosted engine, so evaluate the "Job" view's own columns on the live object.
        var row = "@(" + string.Join(", ", JobViewColumns().Select(c => "$(" + c + ")")) + ") -join ' | '";
        var statuses = new List<string> { ReadStatus() };
        _ps.Run("$job = Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath $out -AsJob", variables: variables).ThrowOnError();
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            var epochs = new List<int>();
            while (epochs.Count < 2 || epochs[^1] <= epochs[0])
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"No advancing job seen (statuses: {string.Join(", ", statuses)}; epochs: {string.Join(", ", epochs)}).");
                var status = ReadStatus();
                if (statuses[^1] != status) statuses.Add(status);
                // Discovery fills WorkerInfo.Job from the worker's published properties.job.
                var rows = _ps.Run("Get-SleapWorker -RoomId $room.RoomId -Status * | Where-Object { $_.Job -and $_.Job.Epoch -gt 0 } | ForEach-Object { " + row + " }").ThrowOnError()
                    .Output.Select(o => o.ToString()).ToList();
                if (rows.Count == 1)
                {
                    var cells = rows[0].Split(" | ");
                    Assert.Equal(peerId[..8], cells[0]); // the short id: the view fits 80 columns
                    Assert.Equal("busy", cells[1]);
                    Assert.Equal("viewed.zip", cells[2]); // the package being trained
                    Assert.Equal("1/1", cells[3]); // config i of n
                    Assert.Matches(@"^\d+/400$", cells[4]); // epoch e of E
                    epochs.Add(int.Parse(cells[4].Split('/')[0], System.Globalization.CultureInfo.InvariantCulture));
                }
                Thread.Sleep(150);
            }
        }
        finally
        {
            _ps.Run("Stop-Job $job").ThrowOnError();
        }
        WaitForStatus("available", TimeSpan.FromSeconds(30));
        statuses.Add("available");
        // Seen in order: available, (reserved: brief, may fall between two polls), busy, available.
        var distinct = statuses.Where((s, i) => i == 0 || statuses[i - 1] != s).ToList();
        Assert.Equal("available", distinct[0]);
        Assert.Equal("available", distinct[^1]);
        Assert.Contains("busy", distinct);
        Assert.True(distinct.SequenceEqual(new[] { "available", "reserved", "busy", "available" }) || distinct.SequenceEqual(new[] { "available", "busy", "available" }),
            "status sequence: " + string.Join(" -> ", distinct));
    }

    [Fact]
    public void A_room_pipes_into_Select_SleapWorker_and_a_bare_Get_SleapWorker_uses_the_room_of_this_session()
    {
        var worker = StartWorker(1);
        var chosen = _ps.Run("$room | Select-SleapWorker -Auto").SingleOf("SleapRtc.WorkerInfo");
        Assert.Equal(worker.Text("PeerId"), chosen.Text("PeerId"));
        // New-SleapRoom in this session made $room the default room.
        var found = _ps.Run("Get-SleapWorker").SingleOf("SleapRtc.WorkerInfo");
        Assert.Equal(worker.Text("PeerId"), found.Text("PeerId"));
    }

    [Fact]
    public void WorkerId_completes_for_room_ids_that_parse_as_numbers()
    {
        // Room ids are 8 random hex digits; about one in 27 reads as a number (00123456, 2e245701). Make rooms until one does.
        var roomId = _ps.Run("""
            foreach ($i in 1..600) {
                $candidate = New-SleapRoom -Server $server.Url
                if ($candidate.RoomId -match '^(\d+|[1-9]\d*e\d+)$') { $numeric = $candidate; break }
            }
            $numeric.RoomId
            """, TimeSpan.FromSeconds(120)).Single<string>();
        var worker = _ps.Run($"$numeric | Start-SleapWorker -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory '{_work}'").ThrowOnError()
            .Output.Single(o => o.BaseObject.GetType().FullName == "SleapRtc.WorkerSession");
        Assert.Contains(worker.Text("PeerId"), Complete($"Submit-SleapTraining -PackagePath x.zip -RoomId {roomId} -WorkerId "));
        Assert.Contains(worker.Text("PeerId"), Complete($"Select-SleapWorker -RoomId {roomId} -WorkerId "));
    }

    [Fact]
    public void Server_and_Port_complete_known_values_and_never_file_names()
    {
        File.WriteAllText(Path.Combine(_work, "ws-notes.txt"), "not a server");
        File.WriteAllText(Path.Combine(_work, "9-notes.txt"), "not a port");
        var url = _ps.Run("$server.Url").Single<string>();
        var port = _ps.Run("$server.Port").Single<int>().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var servers = Complete($"Set-Location '{_work}'; Get-SleapWorker -Server ", afterSetLocation: true);
        Assert.Contains(url, servers);
        Assert.DoesNotContain(servers, m => m.Contains("notes", StringComparison.Ordinal));
        Assert.Empty(Complete($"Set-Location '{_work}'; New-SleapRoom -Server ws-n", afterSetLocation: true));
        Assert.Contains(port, Complete("Stop-SleapSignalingServer -Port "));
        Assert.Empty(Complete($"Set-Location '{_work}'; Get-SleapSignalingServer -Port 9-", afterSetLocation: true));
    }

    [Fact]
    public void Discovered_workers_and_their_tokens_stay_in_the_runspace_that_discovered_them()
    {
        var worker = StartWorker(0);
        var peerId = worker.Text("PeerId")!;
        using var other = new HostedPowerShell();
        // This runspace discovers (and so remembers) the worker; the other one must not complete it.
        _ps.Run("Get-SleapWorker -RoomId $room.RoomId").ThrowOnError();
        var roomId = _ps.Run("$room.RoomId").Single<string>();
        var completions = other.Run("[System.Management.Automation.CommandCompletion]::CompleteInput($text, $text.Length, $null).CompletionMatches | ForEach-Object { $_.CompletionText }",
            variables: new Dictionary<string, object?> { ["text"] = $"Submit-SleapTraining -PackagePath x.zip -RoomId {roomId} -WorkerId " })
            .ThrowOnError().Output.Select(o => o.ToString()).ToList();
        Assert.DoesNotContain(peerId, completions);
        Assert.Contains(peerId, Complete($"Submit-SleapTraining -PackagePath x.zip -RoomId {roomId} -WorkerId "));
    }

    private string ReadStatus() =>
        _ps.Run("Get-SleapWorker -RoomId $room.RoomId -Status * | ForEach-Object Status").ThrowOnError().Output.Single().ToString();

    [Fact]
    public void Scenario07_10_11_WorkerId_of_a_busy_worker_is_refused_its_job_is_untouched_and_AutoSelect_takes_the_next_best()
    {
        var best = StartWorker(1);
        var next = StartWorker(2);
        var longPackage = TestEnvironment.BuildPackage(_work, "occupying", ("config.json", 400));
        var shortPackage = TestEnvironment.BuildPackage(_work, "quick", ("config.json", 2));
        var variables = new Dictionary<string, object?> { ["best"] = best.BaseObject, ["long"] = longPackage, ["short"] = shortPackage, ["out"] = Path.Combine(_work, "s11-out") };
        _ps.Run("$job = Submit-SleapTraining -PackagePath $long -SessionString $best.SessionString -OutputPath $out -AsJob", variables: variables).ThrowOnError();
        try
        {
            WaitForStatus("busy", TimeSpan.FromSeconds(30));

            // Scenario 7/9: naming the busy worker explicitly is refused with the busy error, not queued.
            var refused = _ps.Run("Submit-SleapTraining -PackagePath $short -RoomId $room.RoomId -WorkerId $best.PeerId -OutputPath $out", JobTimeout, variables);
            Assert.StartsWith("WorkerBusy,", refused.FirstError?.FullyQualifiedErrorId);

            // Scenario 11: -AutoSelect skips the busy (bigger) GPU and trains on the next best worker.
            var result = _ps.Run("Submit-SleapTraining -PackagePath $short -RoomId $room.RoomId -AutoSelect -OutputPath $out", JobTimeout, variables)
                .ThrowOnError().SingleOf("SleapRtc.TrainingResult");
            Assert.Equal(next.Text("PeerId"), result.Text("WorkerId"));

            // Scenario 10: the first job was never disturbed.
            Assert.Equal("Running", _ps.Run("$job.State.ToString()").Single<string>());
            Assert.Equal("busy", _ps.Run("(Get-SleapWorker -RoomId $room.RoomId -Status * | Where-Object PeerId -eq $best.PeerId).Status", variables: variables).Single<string>());
        }
        finally
        {
            _ps.Run("Stop-Job $job").ThrowOnError();
        }
    }

    [Fact]
    public void Scenario12_twenty_clients_at_once_against_three_workers_run_exactly_three_jobs()
    {
        var workers = new[] { StartWorker(0), StartWorker(1), StartWorker(2) };
        var package = TestEnvironment.BuildPackage(_work, "race", ("config.json", 400));
        var variables = new Dictionary<string, object?> { ["package"] = package, ["out"] = Path.Combine(_work, "race-out") };
        // All 20 submissions start together as background jobs, each choosing a worker by itself.
        _ps.Run("$racers = 1..20 | ForEach-Object { Submit-SleapTraining -PackagePath $package -RoomId $room.RoomId -AutoSelect -OutputPath ($out + '/' + $_) -AsJob }", variables: variables).ThrowOnError();
        try
        {
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            int finished;
            while ((finished = _ps.Run("@($racers | Where-Object { $_.State.ToString() -ne 'Running' }).Count").Single<int>()) < 17)
            {
                if (DateTime.UtcNow > deadline) throw new TimeoutException($"Only {finished} of the 17 losing clients finished within 60 s.");
                Thread.Sleep(200);
            }
            Assert.Equal(3, _ps.Run("@($racers | Where-Object { $_.State.ToString() -eq 'Running' }).Count").Single<int>());
            // Every worker is busy with exactly one of them (a worker refuses a second offer while busy).
            List<string> statuses;
            while ((statuses = _ps.Run("Get-SleapWorker -RoomId $room.RoomId -Status * | ForEach-Object Status").ThrowOnError().Output.Select(o => o.ToString()).ToList())
                   .Any(s => s == "reserved") && DateTime.UtcNow < deadline)
                Thread.Sleep(100); // the three winners are still uploading
            Assert.Equal(new[] { "busy", "busy", "busy" }, statuses);
            Assert.Equal(3, _ps.Run("@($racers | Where-Object { $_.State.ToString() -eq 'Running' }).Count").Single<int>());

            // Every loser got a clear busy / no-worker error, not a hang or a half-run job.
            var losers = _ps.Run("""
                $racers | Where-Object { $_.State.ToString() -ne 'Running' } | ForEach-Object {
                    $errors = $null
                    $null = Receive-Job $_ -ErrorVariable errors -ErrorAction SilentlyContinue
                    '{0}|{1}' -f $_.State, (@($errors | ForEach-Object FullyQualifiedErrorId) -join ',')
                }
                """).ThrowOnError().Output.Select(o => o.ToString()).ToList();
            Assert.Equal(17, losers.Count);
            foreach (var loser in losers)
                Assert.Matches(@"^\w+\|(WorkerBusy|NoWorkersAvailable|NoWorkers\w*)", loser);
        }
        finally
        {
            _ps.Run("$racers | Stop-Job").ThrowOnError();
        }
        WaitForStatus("available", TimeSpan.FromSeconds(30));
    }

    private static List<string> JobViewColumns()
    {
        var format = System.Xml.Linq.XDocument.Load(Path.Combine(RepoPaths.Root, "bin", "SleapRtc.format.ps1xml"));
        var view = format.Descendants("View").Single(v => (string?)v.Element("Name") == "Job");
        Assert.Equal(new[] { "PeerId", "Status", "Package", "Config", "Epoch", "Loss" }, view.Descendants("Label").Select(l => l.Value));
        return view.Descendants("TableColumnItem").Select(item => item.Element("PropertyName") is { } property
            ? "$_." + property.Value : item.Element("ScriptBlock")!.Value).ToList();
    }

    private void WaitForStatus(string status, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var statuses = _ps.Run("Get-SleapWorker -RoomId $room.RoomId -Status * | ForEach-Object Status").ThrowOnError().Output.Select(o => o.ToString()).ToList();
            if (statuses.Count > 0 && statuses.Contains(status) && (status != "available" || statuses.All(s => s == "available"))) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"No worker became {status} within {timeout.TotalSeconds} s (statuses: {string.Join(", ", statuses)}).");
            Thread.Sleep(100);
        }
    }

    private List<string> Complete(string input, bool afterSetLocation = false)
    {
        var script = afterSetLocation
            ? "$ExecutionContext.SessionState.Path.SetLocation($dir) | Out-Null; $line = $text.Substring($text.IndexOf(';') + 2); [System.Management.Automation.CommandCompletion]::CompleteInput($line, $line.Length, $null).CompletionMatches | ForEach-Object { $_.CompletionText }"
            : "[System.Management.Automation.CommandCompletion]::CompleteInput($text, $text.Length, $null).CompletionMatches | ForEach-Object { $_.CompletionText }";
        return _ps.Run(script, variables: new Dictionary<string, object?> { ["text"] = input, ["dir"] = _work })
            .ThrowOnError().Output.Select(o => o.ToString()).ToList();
    }
}
