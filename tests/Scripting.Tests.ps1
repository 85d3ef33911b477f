# What a lab user scripts, run the way they run it: the headline pipeline verbatim, failures that -ErrorAction Stop
# turns into exceptions, PowerShell jobs, and an unattended script (scheduled task, service) whose exit code says
# whether the training worked.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $server, $room, $work = Initialize-TestRoom scripting
    $workers = 0, 1 | ForEach-Object { $room | Start-SleapWorker -GpuId $_ -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory $work }
    $package = New-TestPackage -Directory $work -Name labels.v001
    $failing = New-TestPackage -Directory $work -Name broken -Failing
    $biggest = $workers | Sort-Object GpuMemoryMB -Descending | Select-Object -First 1
}
AfterAll { Stop-TestRoom }

Describe 'The headline pipeline, verbatim' {
    It 'discovers, sorts by GPU memory, picks the first and trains there' {
        $models = Join-Path $work 'headline'
        $result = Get-SleapWorker -RoomId $room.RoomId | Sort-Object GpuMemoryMB -Descending | Select-Object -First 1 |
            Submit-SleapTraining -PackagePath $package -OutputPath $models
        $result | Should -BeOfType SleapRtc.TrainingResult
        $result.Status | Should -Be 'Succeeded'
        $result.WorkerId | Should -Be $biggest.PeerId
        $result.ModelPaths | Should -Not -BeNullOrEmpty
        foreach ($path in $result.ModelPaths) { Test-Path -LiteralPath $path | Should -BeTrue }
        Wait-RoomIdle $room
    }
    It 'gives a session string of a discovered worker, as README shows (credentials by pipeline, token by name)' {
        $token = $room.Token
        $session = Get-SleapWorker -RoomId $room.RoomId | Select-Object -First 1 | ConvertTo-SleapSessionString -Token $token
        $decoded = $session | ConvertFrom-SleapSessionString
        $decoded.RoomId | Should -Be $room.RoomId
        $decoded.Token | Should -Be $token
        $workers.PeerId | Should -Contain $decoded.PeerId
    }
}

# The contract: a job that fails on the worker writes an ErrorRecord whose FullyQualifiedErrorId starts with
# TrainingJobFailed (TrainingJobCancelled for a cancelled one) and whose TargetObject is the TrainingResult.
Describe 'A training that fails on the worker is an error' {
    It 'throws under -ErrorAction Stop, with the result as the target object' {
        $caught = $null
        try {
            $null = Submit-SleapTraining -PackagePath $failing -RoomId $room.RoomId -AutoSelect -OutputPath (Join-Path $work 'failed') -ErrorAction Stop
        }
        catch { $caught = $_ }
        Wait-RoomIdle $room
        $caught | Should -Not -BeNullOrEmpty -Because 'a scheduled task or a Pester test must see a failed training'
        $caught.FullyQualifiedErrorId | Should -BeLike 'TrainingJobFailed*'
        $caught.TargetObject | Should -BeOfType SleapRtc.TrainingResult
        $caught.TargetObject.Status | Should -Be 'Failed'
    }
    It 'sets $? and the error variable without -ErrorAction Stop' {
        $null = Submit-SleapTraining -PackagePath $failing -RoomId $room.RoomId -AutoSelect -OutputPath (Join-Path $work 'failed2') -ErrorVariable errs -ErrorAction SilentlyContinue
        $succeeded = $?
        Wait-RoomIdle $room
        $succeeded | Should -BeFalse
        $errs[0].FullyQualifiedErrorId | Should -BeLike 'TrainingJobFailed*'
    }
}

Describe 'Submit-SleapTraining -AsJob with Wait-Job and Receive-Job' {
    It 'completes, and Receive-Job returns the result' {
        $job = Submit-SleapTraining -PackagePath $package -RoomId $room.RoomId -AutoSelect -OutputPath (Join-Path $work 'asjob') -AsJob
        $job | Should -BeOfType System.Management.Automation.Job
        (Get-Job -Id $job.Id).Id | Should -Be $job.Id
        $null = $job | Wait-Job -Timeout 90
        $job.State | Should -Be 'Completed'
        $result = $job | Receive-Job
        $result.Status | Should -Be 'Succeeded'
        $result.ModelPaths | Should -Not -BeNullOrEmpty
        $job | Remove-Job
        Wait-RoomIdle $room
    }
    It 'hands the failure of a failed training to Receive-Job' {
        $job = Submit-SleapTraining -PackagePath $failing -RoomId $room.RoomId -AutoSelect -OutputPath (Join-Path $work 'asjob-failed') -AsJob
        $null = $job | Wait-Job -Timeout 90
        $job.State | Should -BeIn 'Completed', 'Failed'
        $null = $job | Receive-Job -ErrorVariable errs -ErrorAction SilentlyContinue
        $errs.FullyQualifiedErrorId | Where-Object { $_ -like 'TrainingJobFailed*' } | Should -Not -BeNullOrEmpty
        $job | Remove-Job
        Wait-RoomIdle $room
    }
}

Describe 'An unattended script (scheduled task, service): pwsh -NonInteractive -File, no standard input' {
    BeforeAll {
        # What a lab's nightly task runs: credentials from the environment, no prompt possible, -ErrorAction Stop
        # so a failed training ends the script with a non-zero exit code.
        $script = Join-Path $work 'nightly.ps1'
        Set-Content -LiteralPath $script -Value @"
param([string] `$Package, [string] `$OutputPath)
Import-Module '$((Join-Path $RepoRoot 'SleapRtc.psd1') -replace "'", "''")'
`$result = Submit-SleapTraining -PackagePath `$Package -AutoSelect -OutputPath `$OutputPath -ErrorAction Stop
"trained on `$(`$result.WorkerId): `$(`$result.Status)"
"@
        $credentials = @{ SLEAP_RTC_SIGNALING_URL = $server.Url; SLEAP_RTC_ROOM_ID = $room.RoomId; SLEAP_RTC_ROOM_TOKEN = $room.Token }
    }
    It 'trains and exits 0' {
        $run = Invoke-PwshFile -Path $script -Arguments $package, (Join-Path $work 'nightly') -Environment $credentials
        Wait-RoomIdle $room
        $run.ExitCode | Should -Be 0 -Because "the script printed: $($run.Output) $($run.Errors)"
        $run.Output | Should -Match 'trained on \S+: Succeeded'
    }
    It 'exits non-zero when the training fails on the worker' {
        $run = Invoke-PwshFile -Path $script -Arguments $failing, (Join-Path $work 'nightly-failed') -Environment $credentials
        Wait-RoomIdle $room
        $run.ExitCode | Should -Not -Be 0 -Because "a failed training must fail the task; the script printed: $($run.Output)"
        $run.Output + $run.Errors | Should -Match 'TrainingJobFailed|fail'
    }
}
