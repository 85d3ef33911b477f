# The room queue and job handles end to end, with the faults of issue 12: real server, workers and clients in separate
# pwsh processes (so they can be killed), the stand-in trainer, -MaxEpochs setting how long a job runs.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $work = Join-Path $env:SLEAP_RTC_DATA_DIR 'queue'
    $null = New-Item -ItemType Directory -Force -Path $work
    $database = Join-Path $work 'rooms.db'
    $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath $database
    $room = New-SleapRoom -Server $server.Url
    $credentials = @{ RoomId = $room.RoomId; Token = $room.Token; Server = $server.Url }
    $script:children = [System.Collections.Generic.List[System.Diagnostics.Process]]::new()

    # A pwsh process running $Script (the module imported, $RoomId/$Token/$Server set), in its own working folder;
    # what it prints goes to files there. Killed at the end of the file if still running.
    function Start-PwshScript([string] $Name, [string] $Script, [string] $DataDirectory = $env:SLEAP_RTC_DATA_DIR) {
        $folder = Join-Path $work $Name
        $null = New-Item -ItemType Directory -Force -Path $folder
        $file = Join-Path $folder 'run.ps1'
        Set-Content -LiteralPath $file -Value @"
`$ErrorActionPreference = 'Stop'
Import-Module '$(Join-Path $script:RepoRoot 'SleapRtc.psd1')'
`$RoomId = '$($room.RoomId)'; `$Token = '$($room.Token)'; `$Server = '$($server.Url)'
$Script
"@
        $self = [System.Diagnostics.Process]::GetCurrentProcess().MainModule.FileName
        $arguments = @('-NonInteractive', '-NoProfile', '-File', $file)
        if ([System.IO.Path]::GetFileNameWithoutExtension($self) -eq 'dotnet') { $arguments = @(Join-Path $PSHOME 'pwsh.dll') + $arguments }
        $previous = $env:SLEAP_RTC_DATA_DIR
        $env:SLEAP_RTC_DATA_DIR = $DataDirectory
        try {
            $process = Start-Process -FilePath $self -ArgumentList $arguments -WorkingDirectory $folder -PassThru `
                -RedirectStandardOutput (Join-Path $folder 'out.txt') -RedirectStandardError (Join-Path $folder 'err.txt')
        }
        finally { $env:SLEAP_RTC_DATA_DIR = $previous }
        $script:children.Add($process)
        $process
    }

    function Start-WorkerProcess([string] $Tag, [int] $GpuId) {
        Start-PwshScript "worker-$Tag" "Start-SleapWorker -Server `$Server -RoomId `$RoomId -Token `$Token -GpuId $GpuId -Tag $Tag -NvidiaSmiPath '$smi' -SleapNnPath '$nn' -WorkingDirectory (Get-Location).Path -Wait"
    }

    # The peer id of the worker carrying $Tag, once it has joined the room.
    function Wait-WorkerPeer([string] $Tag, [int] $TimeoutSeconds = 60) {
        Wait-Until "worker $Tag in the room" $TimeoutSeconds { Get-SleapWorker @credentials -Status * | Where-Object Tags -Contains $Tag }
        (Get-SleapWorker @credentials -Status * | Where-Object Tags -Contains $Tag).PeerId
    }

    function Wait-Until([string] $What, [int] $TimeoutSeconds, [scriptblock] $Condition) {
        $deadline = [datetime]::UtcNow.AddSeconds($TimeoutSeconds)
        while (-not (& $Condition)) {
            if ([datetime]::UtcNow -gt $deadline) { throw "Timed out after $TimeoutSeconds s waiting for: $What" }
            Start-Sleep -Milliseconds 250
        }
    }

    function Stop-Children {
        foreach ($process in $script:children) { if (-not $process.HasExited) { $process.Kill($true) } }
        $script:children.Clear()
    }

    function Get-RoomJob { Get-SleapJob @credentials @args }
}

AfterAll {
    Stop-Children
    Get-SleapSignalingServer | Stop-SleapSignalingServer
}

Describe 'Queued jobs from several clients' {
    AfterAll { Stop-Children }

    It 'runs 10 jobs from 3 client processes on 2 workers exactly once, highest priority first and FIFO within one' {
        $priorities = 0, 5, 0, -5, 5, 0, 10, 0, 5, 0
        $packages = 0..9 | ForEach-Object { New-TestPackage -Directory (Join-Path $work 'fifo') -Name "fifo$_" -Epochs 3 }
        $clients = foreach ($k in 0..2) {
            $lines = foreach ($i in (0..9 | Where-Object { $_ % 3 -eq $k })) {
                "Submit-SleapTraining -PackagePath '$($packages[$i])' -RoomId `$RoomId -Token `$Token -Server `$Server -Queue -Priority $($priorities[$i]) -NoWait -AsJob"
            }
            Start-PwshScript "fifo-client-$k" ("`$queued = @(`n" + ($lines -join "`n") + "`n)`n" +
                "`$queued | Wait-Job -Timeout 240 | Receive-Job -ErrorAction Continue | ForEach-Object JobId | Set-Content handles.txt")
        }
        # Every ticket is in before any worker exists, so the order is the queue's alone.
        Wait-Until '10 queued tickets' 90 { @(Get-RoomJob -State Queued).Count -eq 10 }
        $queue = Get-RoomJob -State Queued | Sort-Object Position
        $queue.Position | Should -Be (1..10)
        # Highest priority first, first come first served within one (tickets created in the same millisecond in
        # either order: only the server saw which came first).
        for ($i = 1; $i -lt 10; $i++) {
            $ahead, $behind = $queue[$i - 1], $queue[$i]
            ($ahead.Priority -gt $behind.Priority -or ($ahead.Priority -eq $behind.Priority -and $ahead.CreatedAt -le $behind.CreatedAt)) |
                Should -BeTrue -Because "$($ahead.JobId) (priority $($ahead.Priority)) is ahead of $($behind.JobId) (priority $($behind.Priority))"
        }
        $expected = $queue.JobId

        $null = Start-WorkerProcess fifo-a 0
        $null = Start-WorkerProcess fifo-b 1
        foreach ($client in $clients) { $client.WaitForExit(240000) | Should -BeTrue }
        $handles = 0..2 | ForEach-Object { Get-Content (Join-Path $work "fifo-client-$_/handles.txt") }
        ($handles | Sort-Object -Unique).Count | Should -Be 10

        $finished = $expected | ForEach-Object { Wait-SleapJob -JobId $_ @credentials -Timeout 180 }
        $finished.State | Select-Object -Unique | Should -Be 'Succeeded'
        @(Get-RoomJob).Count | Should -Be 10
        # The server handed tickets out one at a time: their assignment order is the queue's order.
        ($finished | Sort-Object AssignedAt, { $expected.IndexOf($_.JobId) }).JobId | Should -Be $expected
        ($finished.WorkerId | Sort-Object -Unique).Count | Should -Be 2
    }
}

Describe 'Jobs outlive their client' {
    BeforeAll { $worker = Start-WorkerProcess outlive 0; $workerId = Wait-WorkerPeer outlive }
    AfterAll { Stop-Children }

    It 'finishes a job whose client was killed right after the upload; another process elsewhere collects it' {
        $package = New-TestPackage -Directory (Join-Path $work 'outlive') -Name outlive -Epochs 2
        $client = Start-PwshScript outlive-client "Submit-SleapTraining -PackagePath '$package' -RoomId `$RoomId -Token `$Token -Server `$Server -Queue -MaxEpochs 150 -OutputPath ./models"
        Wait-Until 'the job running' 60 { Get-RoomJob -State Running | Where-Object WorkerId -eq $workerId }
        $client.Kill($true)
        $job = Get-RoomJob -State Running | Where-Object WorkerId -eq $workerId
        $done = Wait-SleapJob -JobId $job.JobId @credentials -Timeout 120
        $done.State | Should -Be 'Succeeded'
        $done.ResultsAvailable | Should -BeTrue
        $done.Overrides.MaxEpochs | Should -Be 150

        # Another "machine": its own data folder (no saved credentials) and working directory; only id and credentials.
        $collector = Start-PwshScript outlive-collector -DataDirectory (Join-Path $work 'elsewhere-data') -Script (
            "Receive-SleapJob -JobId $($job.JobId) -RoomId `$RoomId -Token `$Token -Server `$Server -OutputPath ./collected | " +
            "ForEach-Object { `$_.Status; `$_.OutputPath; `$_.ModelPaths.Count } | Set-Content result.txt")
        $collector.WaitForExit(120000) | Should -BeTrue
        $collector.ExitCode | Should -Be 0
        $status, $folder, $models = Get-Content (Join-Path $work 'outlive-collector/result.txt')
        $status | Should -Be 'Succeeded'
        $folder | Should -BeLike (Join-Path $work 'outlive-collector/collected/outlive-*')
        [int]$models | Should -BeGreaterThan 0
        Get-ChildItem -Recurse -File $folder | Should -Not -BeNullOrEmpty
        # Collected once: the worker deleted them after the clean close, and says so.
        Wait-Until 'the record saying the results are gone' 15 { -not (Get-RoomJob -JobId $job.JobId).ResultsAvailable }
        Test-Path (Join-Path $work 'outlive-client/models') | Should -BeFalse
    }
}

Describe 'A worker killed mid-training' {
    AfterAll { Stop-Children }

    It 'is recorded as Failed within 30 s and the queued tickets go to the other worker' {
        $doomed = Start-WorkerProcess doomed 0
        $doomedId = Wait-WorkerPeer doomed
        $package = New-TestPackage -Directory (Join-Path $work 'killed') -Name killed -Epochs 2
        $client = Start-PwshScript killed-client (
            "`$queued = 1..3 | ForEach-Object { Submit-SleapTraining -PackagePath '$package' -RoomId `$RoomId -Token `$Token -Server `$Server -Queue -MaxEpochs 200 -NoWait -AsJob }`n" +
            "`$queued | Wait-Job -Timeout 240 | Receive-Job -ErrorAction Continue | ForEach-Object JobId | Set-Content handles.txt")
        Wait-Until 'a job running on the doomed worker' 60 { Get-RoomJob -State Running | Where-Object WorkerId -eq $doomedId }
        $victim = (Get-RoomJob -State Running | Where-Object WorkerId -eq $doomedId).JobId
        $doomed.Kill($true)
        $killedAt = [datetime]::UtcNow
        $survivor = Start-WorkerProcess survivor 1
        $survivorId = Wait-WorkerPeer survivor

        Wait-Until 'the killed job recorded as Failed' 35 { (Get-RoomJob -JobId $victim).State -eq 'Failed' }
        ([datetime]::UtcNow - $killedAt).TotalSeconds | Should -BeLessThan 30
        (Get-RoomJob -JobId $victim).Error | Should -Not -BeNullOrEmpty

        $client.WaitForExit(240000) | Should -BeTrue
        $others = Get-Content (Join-Path $work 'killed-client/handles.txt') | Where-Object { $_ -ne $victim }
        $others.Count | Should -Be 2
        $others | ForEach-Object { Wait-SleapJob -JobId $_ @credentials -Timeout 120 } | ForEach-Object {
            $_.State | Should -Be 'Succeeded'
            $_.WorkerId | Should -Be $survivorId
        }
    }
}

Describe 'A server restart' {
    AfterAll { Stop-Children }

    It 'loses nothing and runs nothing twice with 2 jobs running and 3 queued' {
        $null = Start-WorkerProcess restart-a 0
        $null = Start-WorkerProcess restart-b 1
        $null = Wait-WorkerPeer restart-a; $null = Wait-WorkerPeer restart-b
        $package = New-TestPackage -Directory (Join-Path $work 'restart') -Name restart -Epochs 2
        $since = [DateTimeOffset]::UtcNow.AddSeconds(-1)
        $client = Start-PwshScript restart-client (
            "`$queued = 1..5 | ForEach-Object { Submit-SleapTraining -PackagePath '$package' -RoomId `$RoomId -Token `$Token -Server `$Server -Queue -MaxEpochs 600 -NoWait -AsJob }`n" +
            "`$queued | Wait-Job -Timeout 300 | Receive-Job -ErrorAction Continue | ForEach-Object JobId | Set-Content handles.txt")
        # This client's jobs only: an earlier test may have left a ticket whose client it killed (cancelled after 2 min).
        function Get-Ours { Get-RoomJob | Where-Object CreatedAt -ge $since }
        Wait-Until '2 running and 3 queued' 90 { $now = Get-Ours; @($now | Where-Object State -eq Running).Count -eq 2 -and @($now | Where-Object State -eq Queued).Count -eq 3 }
        $before = Get-Ours

        $port = $server.Port
        $server | Stop-SleapSignalingServer
        $script:server = Start-SleapSignalingServer -Port $port -ListenAddress 127.0.0.1 -DatabasePath $database

        $client.WaitForExit(300000) | Should -BeTrue
        $after = $before.JobId | ForEach-Object { Wait-SleapJob -JobId $_ @credentials -Timeout 180 }
        $after.State | Select-Object -Unique | Should -Be 'Succeeded'
        @(Get-RoomJob | Where-Object JobId -in $before.JobId).Count | Should -Be 5
        (Get-Content (Join-Path $work 'restart-client/handles.txt') | Sort-Object -Unique) | Should -Be ($before.JobId | Sort-Object)
        # Each job trained once: one job folder per id across both workers, each log with one training start.
        foreach ($id in $before.JobId) {
            $folders = @(Get-ChildItem -Directory (Join-Path $work 'worker-restart-*/jobs/*'), (Join-Path $work 'worker-restart-*/*') -ErrorAction Ignore | Where-Object Name -eq $id)
            $folders.Count | Should -Be 1 -Because "job $id ran on exactly one worker"
        }
    }
}

Describe 'Stop-SleapJob and bad job ids' {
    BeforeAll { $null = Start-WorkerProcess stopper 0; $stopperId = Wait-WorkerPeer stopper }
    AfterAll { Stop-Children }

    It 'cancels a queued ticket at once and stops a running job, -KeepCheckpoint returning its checkpoint' {
        $package = New-TestPackage -Directory (Join-Path $work 'stop') -Name stop -Epochs 2
        $since = [DateTimeOffset]::UtcNow.AddSeconds(-1)
        $client = Start-PwshScript stop-client (
            "`$queued = 1..3 | ForEach-Object { Submit-SleapTraining -PackagePath '$package' -RoomId `$RoomId -Token `$Token -Server `$Server -Queue -MaxEpochs 400 -NoWait -AsJob }`n" +
            "`$queued | Wait-Job -Timeout 240 | Receive-Job -ErrorAction Continue | ForEach-Object JobId | Set-Content handles.txt")
        Wait-Until 'one running, two queued' 60 { (Get-RoomJob -State Running | Where-Object WorkerId -eq $stopperId) -and @(Get-RoomJob -State Queued | Where-Object CreatedAt -ge $since).Count -ge 2 }
        $running = (Get-RoomJob -State Running | Where-Object WorkerId -eq $stopperId).JobId
        $last = (Get-RoomJob -State Queued | Where-Object CreatedAt -ge $since | Sort-Object Position | Select-Object -Last 1).JobId

        Stop-SleapJob -JobId $last @credentials -Confirm:$false
        (Get-RoomJob -JobId $last).State | Should -Be 'Cancelled'

        Wait-Until 'a first epoch' 30 { (Get-RoomJob -JobId $running).Epoch -ge 1 }
        Stop-SleapJob -JobId $running -KeepCheckpoint @credentials -Confirm:$false
        $stopped = Wait-SleapJob -JobId $running @credentials -Timeout 60
        $stopped.State | Should -Be 'Cancelled'
        $stopped.ResultsAvailable | Should -BeTrue
        $checkpoint = Receive-SleapJob -JobId $running @credentials -OutputPath (Join-Path $work 'stop-collected')
        Get-ChildItem -Recurse -File $checkpoint.OutputPath -Filter *.ckpt | Should -Not -BeNullOrEmpty

        Wait-Until 'the second job running' 60 { (Get-RoomJob -State Running | Where-Object WorkerId -eq $stopperId) }
        $second = (Get-RoomJob -State Running | Where-Object WorkerId -eq $stopperId).JobId
        $second | Get-RoomJob | Stop-SleapJob @credentials -Confirm:$false
        (Wait-SleapJob -JobId $second @credentials -Timeout 60).State | Should -Be 'Cancelled'
        $client.WaitForExit(60000) | Should -BeTrue
    }

    It 'answers an unknown job id and another room''s job id with JobNotFound, touching nothing' {
        $other = New-SleapRoom -Server $server.Url
        $known = Get-RoomJob | Select-Object -First 1
        $ours = $known.JobId
        foreach ($probe in @(
                @{ JobId = 'job_0000000000ff'; Room = $credentials }
                @{ JobId = $ours; Room = @{ RoomId = $other.RoomId; Token = $other.Token; Server = $server.Url } })) {
            $room = $probe.Room
            Get-SleapJob -JobId $probe.JobId @room -ErrorAction SilentlyContinue -ErrorVariable e1
            Stop-SleapJob -JobId $probe.JobId @room -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable e2
            Receive-SleapJob -JobId $probe.JobId @room -OutputPath (Join-Path $work 'never') -ErrorAction SilentlyContinue -ErrorVariable e3
            Wait-SleapJob -JobId $probe.JobId @room -Timeout 5 -ErrorAction SilentlyContinue -ErrorVariable e4
            foreach ($e in $e1, $e2, $e3, $e4) { $e[0].FullyQualifiedErrorId | Should -BeLike 'JobNotFound,*' }
        }
        (Get-RoomJob -JobId $ours).State | Should -Be $known.State
        Test-Path (Join-Path $work 'never') | Should -BeFalse
    }
}

Describe 'A package on the worker''s shared storage' {
    BeforeAll {
        $dataRoot = Join-Path $work 'data-root'
        $outside = Join-Path $work 'outside-root'
        $shared = New-TestPackage -Directory (Join-Path $dataRoot 'pkgs') -Name shared -Epochs 2
        $secret = New-TestPackage -Directory $outside -Name secret -Epochs 2
        $null = New-Item -ItemType SymbolicLink -Path (Join-Path $dataRoot 'link.zip') -Target $secret
        $null = Start-PwshScript worker-storage "Start-SleapWorker -Server `$Server -RoomId `$RoomId -Token `$Token -Tag storage -NvidiaSmiPath '$smi' -SleapNnPath '$nn' -WorkingDirectory (Get-Location).Path -DataRoot '$dataRoot' -Wait"
        $storageId = Wait-WorkerPeer storage
        function Get-Snapshot {
            Get-ChildItem -Recurse -Force $dataRoot, $outside, (Join-Path $work 'worker-storage') -Exclude out.txt, err.txt |
                ForEach-Object { "$($_.FullName) $($_.LastWriteTimeUtc.Ticks) $(if ($_.PSIsContainer) { -1 } else { $_.Length })" }
        }
    }
    AfterAll { Stop-Children }

    It 'trains a package named under the worker''s data root without uploading it; results stay in the job''s folder there and come back' {
        $hash = (Get-FileHash $shared).Hash
        $out = Join-Path $work 'storage-out'
        $result = Submit-SleapTraining -WorkerPackagePath pkgs/shared.zip -WorkerId $storageId @credentials -OutputPath $out
        $result.Status | Should -Be 'Succeeded'
        $result.WorkerId | Should -Be $storageId
        $result.UploadedBytes | Should -Be 0
        Join-Path $dataRoot "jobs/$($result.JobId)/trained_shared.zip" | Should -Exist
        $result.ModelPaths | Should -Not -BeNullOrEmpty
        $result.ModelPaths | ForEach-Object { $_ | Should -BeLike "$out*"; Join-Path $_ 'best.ckpt' | Should -Exist }
        (Get-FileHash $shared).Hash | Should -Be $hash
    }

    It 'refuses <Name> before anything connects (<ErrorId>), touching nothing on the worker or here' -ForEach @(
        @{ Name = 'a path with ..'; Path = '../outside-root/secret.zip'; ErrorId = 'InvalidWorkerPackagePath'; Reason = "climbs out of the data root with '..'" }
        @{ Name = 'an absolute path'; Path = 'ABSOLUTE'; ErrorId = 'InvalidWorkerPackagePath'; Reason = 'it is absolute' }
    ) {
        $target = if ($Path -eq 'ABSOLUTE') { $secret } else { $Path }
        $out = Join-Path $work "refused-$([guid]::NewGuid().ToString('N'))"
        $before = Get-Snapshot
        $refusal = $null
        try { Submit-SleapTraining -WorkerPackagePath $target -WorkerId $storageId @credentials -OutputPath $out -ErrorAction Stop }
        catch { $refusal = $_ }
        $refusal.FullyQualifiedErrorId | Should -BeLike "$ErrorId,*"
        $refusal.Exception.Message | Should -BeLike "*$Reason*"
        Test-Path $out | Should -BeFalse
        Get-Snapshot | Should -Be $before
    }

    It 'refuses a link out of the data root on the worker with a failed result and its error record, touching nothing' {
        $out = Join-Path $work 'refused-link'
        $before = Get-Snapshot
        $result = Submit-SleapTraining -WorkerPackagePath link.zip -WorkerId $storageId @credentials -OutputPath $out -ErrorAction SilentlyContinue -ErrorVariable failed
        $result.Status | Should -Be 'Failed'
        $failed.Count | Should -Be 1
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'TrainingJobFailed,*'
        $failed[0].Exception.Message | Should -BeLike "*bad_worker_path*'link.zip' is a symbolic link*data root*"
        @(Get-ChildItem $out -Recurse -File -ErrorAction Ignore).Count | Should -Be 0
        Wait-Until 'the worker available again' 15 { (Get-SleapWorker @credentials -Status * | Where-Object PeerId -eq $storageId).Status -eq 'available' }
        Get-Snapshot | Should -Be $before
    }
}
