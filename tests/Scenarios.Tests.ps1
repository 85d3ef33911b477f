# Mirrors the scenario-numbered tests of WorkerCmdletTests (seeds/000): busy handling and the 20-client race.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $server, $room, $work = Initialize-TestRoom scenarios
    $workers = 0, 1, 2 | ForEach-Object { $room | Start-SleapWorker -GpuId $_ -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory $work }
    $long = New-TestPackage -Directory $work -Name occupying -Epochs 400
    $short = New-TestPackage -Directory $work -Name quick -Epochs 2
}
AfterAll { Stop-TestRoom }

Describe 'Scenarios 7, 10, 11: a busy worker' {
    It 'refuses -WorkerId, keeps its job, and -AutoSelect trains elsewhere' {
        $best = Get-SleapWorker -RoomId $room.RoomId | Sort-Object GpuMemoryMB -Descending | Select-Object -First 1
        $job = $best | Submit-SleapTraining -PackagePath $long -OutputPath (Join-Path $work 'long') -AsJob
        try {
            $deadline = (Get-Date).AddSeconds(30)
            while ((Get-SleapWorker -RoomId $room.RoomId -Status * | Where-Object PeerId -eq $best.PeerId).Status -ne 'busy' -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 100 }
            { Submit-SleapTraining -PackagePath $short -RoomId $room.RoomId -WorkerId $best.PeerId -OutputPath (Join-Path $work 'x') -ErrorAction Stop } |
                Should -Throw -ErrorId 'WorkerBusy*'
            $result = Submit-SleapTraining -PackagePath $short -RoomId $room.RoomId -AutoSelect -OutputPath (Join-Path $work 'y')
            $result.WorkerId | Should -Not -Be $best.PeerId
            $job.State | Should -Be 'Running'
        }
        finally { $job | Stop-Job }
    }
}

Describe 'Scenario 12: twenty clients at once against three workers' {
    It 'runs exactly three jobs and gives every other client a busy or no-worker error' {
        $racers = 1..20 | ForEach-Object { Submit-SleapTraining -PackagePath $long -RoomId $room.RoomId -AutoSelect -OutputPath (Join-Path $work "race$_") -AsJob }
        try {
            $deadline = (Get-Date).AddSeconds(60)
            while (@($racers | Where-Object State -ne 'Running').Count -lt 17 -and (Get-Date) -lt $deadline) { Start-Sleep -Milliseconds 200 }
            @($racers | Where-Object State -eq 'Running').Count | Should -Be 3
            foreach ($loser in $racers | Where-Object State -ne 'Running') {
                $null = Receive-Job $loser -ErrorVariable errors -ErrorAction SilentlyContinue
                $errors[0].FullyQualifiedErrorId | Should -Match '^(WorkerBusy|NoWorkersAvailable)'
            }
        }
        finally { $racers | Stop-Job }
    }
}
