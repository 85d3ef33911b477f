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
    It 'shares rooms through -Redis and SLEAP_RTC_REDIS_URL, and reports an unreachable Redis with a stable error id' {
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $probe.Start(); $redisPort = $probe.LocalEndpoint.Port; $probe.Stop()
        $redis = Start-Process redis-server -ArgumentList '--port', $redisPort, '--bind', '127.0.0.1', '--save', '""', '--appendonly', 'no' -PassThru -RedirectStandardOutput ([System.IO.Path]::GetTempFileName())
        try {
            $deadline = [datetime]::UtcNow.AddSeconds(10)
            while ([datetime]::UtcNow -lt $deadline) {
                try { $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $redisPort); $c.Dispose(); break } catch { Start-Sleep -Milliseconds 50 }
            }
            $first = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -Redis "redis://127.0.0.1:$redisPort"
            $env:SLEAP_RTC_REDIS_URL = "redis://127.0.0.1:$redisPort"
            try { $second = Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 }
            finally { Remove-Item Env:SLEAP_RTC_REDIS_URL }
            try {
                $first.DatabasePath | Should -Be '(redis)'
                $second.DatabasePath | Should -Be '(redis)'
                # A room created through one server opens through the other.
                $room = New-SleapRoom -Server "ws://127.0.0.1:$($first.Port)"
                $signIn = Invoke-RestMethod -Method Post "http://127.0.0.1:$($second.Port)/anonymous-signin" -Body '{}' -ContentType 'application/json'
                $body = @{ peer_id = 'nobody'; room_id = $room.RoomId; token = $room.Token } | ConvertTo-Json
                (Invoke-WebRequest -Method Post "http://127.0.0.1:$($second.Port)/delete-peer" -Body $body -ContentType 'application/json' -SkipHttpErrorCheck).StatusCode | Should -Be 404
                $signIn.id_token | Should -Not -BeNullOrEmpty
                (Invoke-RestMethod "http://127.0.0.1:$($second.Port)/health").status | Should -Be 'healthy'
            }
            finally { $first, $second | Where-Object { $_ } | Stop-SleapSignalingServer }
        }
        finally { Stop-Process -Id $redis.Id -Force }
        { Start-SleapSignalingServer -Port 0 -ListenAddress 127.0.0.1 -Redis "127.0.0.1:$redisPort" -ErrorAction Stop } |
            Should -Throw -ErrorId 'SignalingServerStartFailed,*'
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
