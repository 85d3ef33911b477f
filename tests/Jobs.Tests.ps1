# Job handles and Submit-SleapTraining's job options in a real pwsh: parameter sets, validation against the contract's
# ranges, refusals before anything connects, -WhatIf on Stop-SleapJob, the JobInfo table at 80 columns. The queue
# itself (server and workers) is exercised end to end in Queue.Tests.ps1.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    # Nothing listens here: a command that sent anything would fail with SignalingServerUnavailable.
    $offline = @{ RoomId = 'room-x'; Token = 'tok-x'; Server = 'ws://127.0.0.1:9' }
    $work = Join-Path $env:SLEAP_RTC_DATA_DIR 'jobs'
    $package = New-TestPackage -Directory $work
}

Describe 'Submit-SleapTraining job options' {
    It 'uploads a package by default and names one on the worker''s storage in its own parameter set' {
        $command = Get-Command Submit-SleapTraining
        $command.DefaultParameterSet | Should -Be 'Upload'
        ($command.ParameterSets.Name | Sort-Object) | Should -Be @('Upload', 'WorkerStorage')
        { Submit-SleapTraining -PackagePath $package -WorkerPackagePath lab/x.zip @offline -WorkerId w } |
            Should -Throw -ErrorId 'AmbiguousParameterSet,SleapRtc.PowerShell.Commands.SubmitSleapTrainingCommand'
    }
    It 'refuses <Option> at binding' -ForEach @(
        @{ Option = @{ Priority = 101 } }, @{ Option = @{ Priority = -101 } }, @{ Option = @{ MaxEpochs = 0 } },
        @{ Option = @{ BatchSize = 65537 } }, @{ Option = @{ LearningRate = 0 } }, @{ Option = @{ LearningRate = 11 } },
        @{ Option = @{ RunName = 'two words' } }, @{ Option = @{ RunName = '../up' } }
    ) {
        { Submit-SleapTraining -PackagePath $package -Queue @Option @offline } |
            Should -Throw -ErrorId 'ParameterArgumentValidationError,SleapRtc.PowerShell.Commands.SubmitSleapTrainingCommand'
    }
    It 'refuses the worker package path <Path> before anything connects, leaving no folder' -ForEach @(
        @{ Path = '../x.zip' }, @{ Path = 'lab/../../x.zip' }, @{ Path = '/srv/data/x.zip' }, @{ Path = 'C:\data\x.zip' }
    ) {
        $out = Join-Path $work "never-$([guid]::NewGuid().ToString('N'))"
        { Submit-SleapTraining -WorkerPackagePath $Path -OutputPath $out -WorkerId w @offline -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidWorkerPackagePath,SleapRtc.PowerShell.Commands.SubmitSleapTrainingCommand'
        Test-Path $out | Should -BeFalse
    }
    It 'says -Priority and -Tag need -Queue' {
        { Submit-SleapTraining -PackagePath $package -Priority 3 -WorkerId w @offline -ErrorAction Stop } |
            Should -Throw -ErrorId 'QueueOptionWithoutQueue,SleapRtc.PowerShell.Commands.SubmitSleapTrainingCommand'
    }
}

Describe 'Get-, Wait-, Stop-, Receive-SleapJob' {
    It '<Command> takes the job id by position and from a piped JobInfo' -ForEach @(
        @{ Command = 'Get-SleapJob' }, @{ Command = 'Wait-SleapJob' }, @{ Command = 'Stop-SleapJob' }, @{ Command = 'Receive-SleapJob' }
    ) {
        $jobId = (Get-Command $Command).Parameters['JobId']
        $jobId.ParameterSets.Values.Position | Should -Be 0
        $jobId.ParameterSets.Values.ValueFromPipelineByPropertyName | Should -BeTrue
        (Get-Command $Command).Parameters['RoomId'].ParameterSets.Values.ValueFromPipelineByPropertyName | Should -BeTrue
    }
    It 'Stop-SleapJob -WhatIf sends nothing, and without it the same command does try the server' {
        $job = [SleapRtc.JobInfo]@{ JobId = 'job_00aa11bb22cc'; RoomId = 'room-x'; Server = 'ws://127.0.0.1:9'; Token = 'tok-x' }
        $job | Stop-SleapJob -WhatIf -ErrorVariable failed
        $failed | Should -BeNullOrEmpty
        $job | Stop-SleapJob -Confirm:$false -ErrorAction SilentlyContinue -ErrorVariable failed
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'SignalingServerUnavailable,*'
    }
    It 'shows a night''s jobs in 80 columns with the job ids whole' {
        $jobs = @(
            [SleapRtc.JobInfo]@{ JobId = 'job_3f9a1c2e4b5d'; State = 'Running'; WorkerId = 'a3f1c2d4-5b6e-4f70-8192-a3b4c5d6e7f8'; PackageName = 'labels.v001.pkg.zip'; Epoch = 137; EpochCount = 200; Loss = 0.0123456 }
            [SleapRtc.JobInfo]@{ JobId = 'job_0a1b2c3d4e5f'; State = 'Queued'; Position = 3; PackageName = 'mice.pkg.zip' }
        )
        $text = $jobs | Out-String -Width 80
        $text -split "`n" | ForEach-Object { $_.TrimEnd().Length | Should -BeLessOrEqual 80 }
        $text | Should -Match 'job_3f9a1c2e4b5d\s+Running\s+a3f1c2d4\s+137/200\s+0\.0123\s+labels\.v001\.pkg\.zip'
        $text | Should -Match 'job_0a1b2c3d4e5f\s+Queued\s+3\s+mice\.pkg\.zip'
    }
}
