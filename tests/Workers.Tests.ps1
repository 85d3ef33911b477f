BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $server, $room, $work = Initialize-TestRoom workers
    $workers = 0, 1 | ForEach-Object { $room | Start-SleapWorker -GpuId $_ -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory $work -InformationVariable +banner }
}
AfterAll { Stop-TestRoom }

Describe 'Workers and clients end to end' {
    It 'prints the banner and joins both workers to one room' {
        ($banner | Out-String) | Should -Match 'Session string for DIRECT connection'
        $workers.RoomId | Select-Object -Unique | Should -Be $room.RoomId
        ($workers.PeerId | Select-Object -Unique).Count | Should -Be 2
    }
    It 'discovers the workers with their GPUs' {
        $found = Get-SleapWorker -RoomId $room.RoomId
        $found.Count | Should -Be 2
        $found | Should -BeOfType SleapRtc.WorkerInfo
        ($found | Sort-Object GpuMemoryMB -Descending | Select-Object -First 1).GpuModel | Should -Be 'NVIDIA RTX A6000'
    }
    It 'runs the headline pipeline' {
        $package = New-TestPackage -Directory $work
        $result = Get-SleapWorker -RoomId $room.RoomId | Sort-Object GpuMemoryMB -Descending | Select-Object -First 1 |
            Submit-SleapTraining -PackagePath $package -OutputPath (Join-Path $work 'models')
        $result.Status | Should -Be 'Succeeded'
        $result.ModelPaths | Should -Not -BeNullOrEmpty
        Wait-RoomIdle $room
        (Get-SleapWorker -RoomId $room.RoomId -Status *).Status | Should -Not -Contain 'busy'
    }
    It 'auto-selects the most GPU memory' {
        (Select-SleapWorker -RoomId $room.RoomId -Auto).GpuModel | Should -Be 'NVIDIA RTX A6000'
    }
    It 'runs as a job' {
        $package = New-TestPackage -Directory $work -Name job
        $job = Submit-SleapTraining -PackagePath $package -RoomId $room.RoomId -AutoSelect -OutputPath (Join-Path $work 'job') -AsJob
        $job | Wait-Job -Timeout 90 | Receive-Job | ForEach-Object Status | Should -Be 'Succeeded'
    }
}

Describe 'Stop-SleapWorker' {
    It 'stops a piped worker session and leaves the others running' {
        $extra = $room | Start-SleapWorker -GpuId 2 -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory $work
        (Get-SleapWorker -Local).PeerId | Should -Contain $extra.PeerId
        $extra | Stop-SleapWorker
        (Get-SleapWorker -Local).PeerId | Should -Not -Contain $extra.PeerId
        @(Get-SleapWorker -Local).Count | Should -Be 2
    }
}
