BeforeAll {
    . (Join-Path $PSScriptRoot 'common.ps1')
    $server, $room, $work = Initialize-TestRoom monitor
}
AfterAll { Stop-TestRoom }

Describe 'Show-SleapMonitor' {
    It 'builds a link with the credentials in the fragment, never in a query string' {
        $link = $room | Show-SleapMonitor -NoBrowser
        $uri = [uri]$link
        $uri.AbsolutePath | Should -Be '/monitor'
        $uri.Query | Should -BeNullOrEmpty
        $uri.Fragment | Should -Be ('#room={0}&token={1}' -f [uri]::EscapeDataString($room.RoomId), [uri]::EscapeDataString($room.Token))
        (Invoke-WebRequest -Uri $uri.GetLeftPart('Path')).StatusCode | Should -Be 200
    }
    It 'writes the link when no browser can be opened' {
        $saved = $env:DISPLAY, $env:WAYLAND_DISPLAY
        try {
            $env:DISPLAY = $null; $env:WAYLAND_DISPLAY = $null
            Show-SleapMonitor -RoomId $room.RoomId | Should -Match '/monitor#room='
        }
        finally { $env:DISPLAY, $env:WAYLAND_DISPLAY = $saved }
    }
    It 'reports unknown rooms as MissingRoomCredentials' {
        { Show-SleapMonitor -RoomId no-such-room -NoBrowser -ErrorAction Stop } | Should -Throw -ErrorId 'MissingRoomCredentials*'
    }
}

Describe 'Scenario 6: status lifecycle and the Job view' {
    It 'shows a running job with config i/n and an advancing epoch' {
        $worker = $room | Start-SleapWorker -GpuId 0 -NvidiaSmiPath $smi -SleapNnPath $nn -WorkingDirectory $work
        $package = New-TestPackage -Directory $work -Name viewed -Epochs 400
        $job = Submit-SleapTraining -PackagePath $package -SessionString $worker.SessionString -OutputPath (Join-Path $work 'out') -AsJob
        try {
            $deadline = (Get-Date).AddSeconds(30)
            do {
                $running = Get-SleapWorker -RoomId $room.RoomId -Status * | Where-Object { $_.Job -and $_.Job.Epoch -gt 0 }
                Start-Sleep -Milliseconds 200
            } until ($running -or (Get-Date) -gt $deadline)
            $running.Status | Should -Be 'busy'
            $table = $running | Format-Table -View Job | Out-String
            $table | Should -Match 'Epoch'
            $table | Should -Match '\d+/\d+'
        }
        finally { $job | Stop-Job }
    }
}
