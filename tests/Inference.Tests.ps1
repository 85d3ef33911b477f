# Remote inference as a lab scripts it: the models a training returned piped straight into Submit-SleapInference,
# and a named inference space listed by Get-SleapSpace and fed a video.
BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $server, $room, $work = Initialize-TestRoom inference
    $worker = $room | Start-SleapWorker -GpuId 0 -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory (Join-Path $work 'trainer')
    $package = New-TestPackage -Directory $work -Name labels.v001
    $video = Join-Path $work 'session1.mp4'
    [System.IO.File]::WriteAllBytes($video, [byte[]](1..200))
}
AfterAll { Stop-TestRoom }

Describe 'Submit-SleapInference' {
    It 'runs the models a training returned on a new video and keeps the predictions' {
        $out = Join-Path $work 'predictions'
        $result = Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath (Join-Path $work 'models') |
            Submit-SleapInference -DataPath $video -SessionString $worker.SessionString -OutputPath $out
        $result | Should -BeOfType SleapRtc.InferenceResult
        $result.Status | Should -Be 'Succeeded'
        $result.PredictionsPath | Should -BeLike '*session1.predictions.slp'
        Test-Path -LiteralPath $result.PredictionsPath | Should -BeTrue
        Wait-RoomIdle $room
    }
}

Describe 'Inference spaces' {
    It 'lists a space with Get-SleapSpace and answers a request sent to it by name' {
        $models = Join-Path $work 'space-models/centroid'
        $null = New-Item -ItemType Directory -Force -Path $models
        $null = $room | Start-SleapWorker -Space mice -ModelPath $models -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory (Join-Path $work 'space')
        $space = Get-SleapSpace -RoomId $room.RoomId -Name mice
        $space.Name | Should -Be 'mice'
        $result = Submit-SleapInference -Space mice -RoomId $room.RoomId -DataPath $video -OutputPath (Join-Path $work 'space-out')
        $result.Status | Should -Be 'Succeeded'
        Test-Path -LiteralPath $result.PredictionsPath | Should -BeTrue
    }
}
