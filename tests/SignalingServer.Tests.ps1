BeforeAll { . (Join-Path $PSScriptRoot 'common.ps1') }

Describe 'Start/Get/Stop-SleapSignalingServer' {
    It 'starts on an ephemeral port, is listed, answers /health and frees the port when stopped' {
        $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
        $server.State | Should -Be 'Running'
        (Get-SleapSignalingServer).InstanceId | Should -Contain $server.InstanceId
        (Invoke-RestMethod "http://127.0.0.1:$($server.Port)/health") | Should -Not -BeNullOrEmpty
        $server | Stop-SleapSignalingServer
        Get-SleapSignalingServer | Should -BeNullOrEmpty
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, $server.Port)
        { $probe.Start() } | Should -Not -Throw
        $probe.Stop()
    }
    It 'supports -WhatIf' {
        $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:'
        $server | Stop-SleapSignalingServer -WhatIf
        Get-SleapSignalingServer | Should -Not -BeNullOrEmpty
        $server | Stop-SleapSignalingServer
    }
    It 'reports a taken port with a stable error id' {
        $blocker = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $blocker.Start()
        try {
            { Start-SleapSignalingServer -Port $blocker.LocalEndpoint.Port -ListenAddress 127.0.0.1 -DatabasePath ':memory:' -ErrorAction Stop } |
                Should -Throw -ErrorId 'SignalingServerStartFailed,*'
        }
        finally { $blocker.Stop() }
    }
    It 'takes the job record retention and refuses one out of range' {
        $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:' -JobRetentionDays 7 -MaxFinishedJobsPerRoom 500
        try { $server.State | Should -Be 'Running' }
        finally { $server | Stop-SleapSignalingServer }
        { Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:' -JobRetentionDays 0 -ErrorAction Stop } |
            Should -Throw -ErrorId 'ParameterArgumentValidationError,*'
        Get-SleapSignalingServer | Should -BeNullOrEmpty
    }
    It 'takes -TurnUrl with -TurnSecret and refuses either alone with a stable error id' {
        $server = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:' -TurnUrl 'turn:127.0.0.1:3478,turns:127.0.0.1:5349' -TurnSecret 'pester-secret'
        try { $server.State | Should -Be 'Running' }
        finally { $server | Stop-SleapSignalingServer }
        { Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:' -TurnUrl 'turn:127.0.0.1:3478' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidTurnConfiguration,*'
        { Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:' -TurnUrl 'stun:127.0.0.1' -TurnSecret 's' -ErrorAction Stop } |
            Should -Throw -ErrorId 'InvalidTurnConfiguration,*'
        Get-SleapSignalingServer | Should -BeNullOrEmpty
    }
    It '-Wait returns on Ctrl+C (Stop) and stops the server' {
        $ps = [PowerShell]::Create()
        try {
            $null = $ps.AddScript("Import-Module '$RepoRoot/SleapRtc.psd1'; Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath ':memory:' -Wait")
            $output = [System.Management.Automation.PSDataCollection[psobject]]::new()
            $async = $ps.BeginInvoke([System.Management.Automation.PSDataCollection[psobject]]::new(), $output)
            $deadline = [datetime]::UtcNow.AddSeconds(20)
            while ($output.Count -eq 0 -and [datetime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 50 }
            $output.Count | Should -Be 1
            $async.IsCompleted | Should -BeFalse
            $watch = [System.Diagnostics.Stopwatch]::StartNew()
            $ps.Stop()
            $watch.Elapsed.TotalSeconds | Should -BeLessThan 3
        }
        finally { $ps.Dispose() }
    }
}

Describe 'Several servers: -Server lists and draining' {
    It 'moves a worker given two servers off the one being stopped, under its peer id' {
        $db = Join-Path $env:SLEAP_RTC_DATA_DIR "failover-$([guid]::NewGuid().ToString('N')).db"
        $a = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath $db
        $b = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -DatabasePath $db -DrainTimeoutSec 5
        try {
            $room = New-SleapRoom -Server $a.Url, $b.Url
            $room.Server | Should -Be "$($a.Url),$($b.Url)"
            $worker = $room | Start-SleapWorker -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory (Join-Path $env:SLEAP_RTC_DATA_DIR failover)
            $worker.Server | Should -Be $room.Server
            (ConvertFrom-SleapSessionString $worker.SessionString).Server | Should -Be $room.Server

            $a | Stop-SleapSignalingServer -DrainTimeoutSec 20
            Get-SleapSignalingServer | Where-Object InstanceId -eq $a.InstanceId | Should -BeNullOrEmpty
            (Get-SleapWorker -RoomId $room.RoomId -Server $b.Url).PeerId | Should -Be $worker.PeerId
        }
        finally {
            Get-SleapWorker -Local | Stop-SleapWorker
            Get-SleapSignalingServer | Stop-SleapSignalingServer
        }
    }
    It 'refuses a drain timeout out of range' {
        { Stop-SleapSignalingServer -Port 1 -DrainTimeoutSec -1 -ErrorAction Stop } | Should -Throw -ErrorId 'ParameterArgumentValidationError,*'
    }
}
