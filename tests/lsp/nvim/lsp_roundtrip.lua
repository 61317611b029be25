-- Drive gemma-lsp from a real, headless Neovim (0.7+) and write what came back as JSON.
--
-- Run:  nvim --headless -u NONE -i NONE -n -c 'luafile tests/lsp/nvim/lsp_roundtrip.lua'
-- (`nvim -l` does not exist in 0.7.)  Inputs come from the environment:
--   GEMMA_NVIM_CMD         JSON list: the server command, e.g. [".venv/bin/python", "-m", "gemma_lsp", "serve"]
--   GEMMA_NVIM_INIT        JSON object: initializationOptions, e.g. {"gemma": {"model": {"path": "..."}}}
--   GEMMA_NVIM_FILE        the Python file to open (its text is known to the test)
--   GEMMA_NVIM_RESULT      where to write the JSON findings
--   GEMMA_NVIM_TIMEOUT_MS  limit for every single wait (default 20000)
--   GEMMA_NVIM_ENCODING    "utf-16" (default: what 0.7 speaks) or "utf-8": offer
--                          general.positionEncodings {utf-8, utf-16, utf-32} first and use
--                          UTF-8 columns, as newer Neovims do by default
--
-- It uses only what Neovim 0.7 has: vim.lsp.start_client, buf_attach_client, buf_request_sync,
-- client.request_sync. Neovim sends didOpen/didChange itself. Rounds:
--   1. the file as opened, cursor on the empty indented line in main()
--   2. after nvim_buf_set_lines replaced that line with three lines (non-ASCII before the cursor)
--   3. after nvim_buf_set_text inserted text on the cursor line, before the cursor
--   4. after applying round 3's completion textEdit with vim.lsp.util.apply_text_edits
-- Each round sends textDocument/completion, textDocument/inlineCompletion and gemma/stats.
-- Checks are made by the test on the JSON; this script only fails (exit 1) when it cannot
-- collect an answer (timeout, error response, server gone, Lua error).

local out = {
  nvim_version = tostring(vim.version().major) .. '.' .. vim.version().minor .. '.' .. vim.version().patch,
  errors = {},
  rounds = {},
  progress = {},
  messages = {},
  log_messages = {},
}
local result_path = os.getenv('GEMMA_NVIM_RESULT')
local timeout = tonumber(os.getenv('GEMMA_NVIM_TIMEOUT_MS') or '') or 20000
local client_id, exited

local function fail(msg)
  table.insert(out.errors, msg)
  error(msg, 0)
end

local function write_result()
  if result_path then
    vim.fn.writefile({ vim.fn.json_encode(out) }, result_path)
  end
end

-- Every handler the server may call; record instead of printing to a headless screen.
local default_progress = vim.lsp.handlers['$/progress']
local handlers = {
  ['$/progress'] = function(err, result, ctx, config)
    table.insert(out.progress, result and result.value or { err = tostring(err) })
    return default_progress(err, result, ctx, config)
  end,
  ['window/showMessage'] = function(_, result)
    table.insert(out.messages, result)
  end,
  ['window/logMessage'] = function(_, result)
    table.insert(out.log_messages, result)
  end,
}

local function request(method, params)
  -- buf_request_sync flushes pending didChange first (client.request does), then waits.
  local responses, err = vim.lsp.buf_request_sync(0, method, params, timeout)
  if not responses then
    fail(method .. ': no answer within ' .. timeout .. ' ms (' .. tostring(err) .. ')')
  end
  local response = responses[client_id]
  if not response then
    fail(method .. ': the gemma-lsp client did not answer')
  end
  if response.err or response.error then
    fail(method .. ': error response ' .. vim.inspect(response.err or response.error))
  end
  return response.result
end

local function stats()
  local client = vim.lsp.get_client_by_id(client_id)
  local response, err = client.request_sync('gemma/stats', vim.empty_dict(), timeout, 0)
  if not response then
    fail('gemma/stats: no answer within ' .. timeout .. ' ms (' .. tostring(err) .. ')')
  end
  if response.err then
    fail('gemma/stats: error response ' .. vim.inspect(response.err))
  end
  return response.result
end

-- Put the cursor at (row 1-based, byte col 0-based) and build params as completion plugins do.
local function position_params(row, col)
  vim.api.nvim_win_set_cursor(0, { row, col })
  local cursor = vim.api.nvim_win_get_cursor(0)
  if cursor[1] ~= row or cursor[2] ~= col then
    fail(('cursor landed at %s, wanted {%d, %d}'):format(vim.inspect(cursor), row, col))
  end
  return vim.lsp.util.make_position_params()
end

local function ask(label, row, col)
  local params = position_params(row, col)
  local completion_params = vim.deepcopy(params)
  completion_params.context = { triggerKind = 1 } -- Invoked
  local inline_params = vim.deepcopy(params)
  inline_params.context = { triggerKind = 1 } -- InlineCompletionTriggerKind.Invoked
  local round = {
    label = label,
    cursor = { row = row, col = col },
    line = vim.api.nvim_buf_get_lines(0, row - 1, row, true)[1],
    buffer = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), '\n'),
    changedtick = vim.api.nvim_buf_get_changedtick(0),
    position = params.position,
  }
  local started = vim.loop.hrtime()
  round.completion = request('textDocument/completion', completion_params)
  round.completion_ms = (vim.loop.hrtime() - started) / 1e6
  started = vim.loop.hrtime()
  round.inline = request('textDocument/inlineCompletion', inline_params)
  round.inline_ms = (vim.loop.hrtime() - started) / 1e6
  round.stats = stats()
  table.insert(out.rounds, round)
  return round
end

local function main()
  local cmd = vim.fn.json_decode(os.getenv('GEMMA_NVIM_CMD') or fail('GEMMA_NVIM_CMD is not set'))
  local init_options = vim.fn.json_decode(os.getenv('GEMMA_NVIM_INIT') or '{}')
  local file = os.getenv('GEMMA_NVIM_FILE') or fail('GEMMA_NVIM_FILE is not set')
  local encoding = os.getenv('GEMMA_NVIM_ENCODING') or 'utf-16'
  local capabilities = vim.lsp.protocol.make_client_capabilities()
  if encoding ~= 'utf-16' then
    capabilities.general = { positionEncodings = { encoding, 'utf-16', 'utf-32' } }
  end
  if not result_path then
    fail('GEMMA_NVIM_RESULT is not set')
  end
  vim.lsp.set_log_level('warn')
  out.nvim_lsp_log = vim.lsp.get_log_path()

  vim.cmd('edit! ' .. vim.fn.fnameescape(file))
  vim.bo.filetype = 'python' -- -u NONE: no filetype detection
  vim.o.virtualedit = 'onemore' -- let the normal-mode cursor sit at the end of a line

  client_id = vim.lsp.start_client({
    name = 'gemma-lsp',
    cmd = cmd,
    root_dir = vim.fn.fnamemodify(file, ':p:h'),
    init_options = init_options,
    capabilities = capabilities,
    offset_encoding = encoding, -- 0.7 does not read the server's positionEncoding itself
    handlers = handlers,
    on_exit = function(code, signal)
      exited = { code = code, signal = signal }
    end,
  })
  if not client_id then
    fail('vim.lsp.start_client returned nil')
  end
  -- Attached before initialization: Neovim sends didOpen once initialize has answered.
  vim.lsp.buf_attach_client(0, client_id)
  local client = vim.lsp.get_client_by_id(client_id)
  local ok = vim.wait(timeout, function()
    return client.initialized or exited ~= nil
  end, 10)
  if exited ~= nil then
    fail('the server exited before initializing: ' .. vim.inspect(exited))
  elseif not ok or not client.initialized then
    fail('the server did not initialize within ' .. timeout .. ' ms')
  end
  out.server_capabilities = client.server_capabilities
  out.offset_encoding = client.offset_encoding

  -- Round 1: the empty indented line at the end of main() (row 10, after its 4 spaces).
  ask('opened', 10, 4)

  -- Round 2: replace that line with three; the cursor goes to the end of the last one,
  -- after characters that take 2 and 4 bytes in UTF-8 and 1 and 2 code units in UTF-16.
  local new_lines = { '    name = "wörld 😀"', '    greeting = greet(name)', '    print(greeting, "é😀", ' }
  vim.api.nvim_buf_set_lines(0, 9, 10, true, new_lines)
  ask('set_lines', 12, #new_lines[3])

  -- Round 3: insert text in the middle of the cursor line, before the cursor.
  vim.api.nvim_buf_set_text(0, 11, 4, 11, 4, { 'print("ß") or ' })
  local line = vim.api.nvim_buf_get_lines(0, 11, 12, true)[1]
  local round3 = ask('set_text', 12, #line)

  -- Round 4: accept round 3's completion the way Neovim applies a server's text edit.
  local edit = round3.completion and round3.completion.items and round3.completion.items[1]
    and round3.completion.items[1].textEdit
  if not edit then
    fail('round 3 completion has no textEdit to apply')
  end
  vim.lsp.util.apply_text_edits({ edit }, 0, client.offset_encoding)
  local inserted = vim.split(edit.newText, '\n', true)
  local end_row = 12 + #inserted - 1
  local end_col = (#inserted == 1 and #line or 0) + #inserted[#inserted]
  out.applied = {
    new_text = edit.newText,
    buffer = table.concat(vim.api.nvim_buf_get_lines(0, 0, -1, true), '\n'),
  }
  ask('applied', end_row, end_col)

  -- Shut down the way Neovim does on exit: shutdown request, exit notification.
  vim.lsp.stop_client(client_id)
  vim.wait(timeout, function()
    return exited ~= nil
  end, 10)
  out.server_exit = exited or 'still running after ' .. timeout .. ' ms'
end

local ok, err = xpcall(main, debug.traceback)
if not ok then
  if #out.errors == 0 or not tostring(err):find(out.errors[#out.errors], 1, true) then
    table.insert(out.errors, tostring(err))
  end
end
out.ok = ok
local written, write_err = pcall(write_result)
if not written then
  io.stderr:write('could not write the result: ' .. tostring(write_err) .. '\n')
  ok = false
end
if ok then
  vim.cmd('qall!')
else
  io.stderr:write(table.concat(out.errors, '\n') .. '\n')
  if client_id then
    vim.lsp.stop_client(client_id, true)
  end
  vim.cmd('cquit 1')
end
