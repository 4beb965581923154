// The chat page: one WebSocket to /chat/ws (the session cookie goes with
// its handshake); each message shown as it comes, sent ones included (the
// server broadcasts to every open socket, this one too). mongrel2 closes a
// socket idle for a few minutes: the page opens a new one, waiting longer
// after each failure.
(function () {
  "use strict";
  var list = document.getElementById("messages");
  var status = document.getElementById("status");
  var input = document.getElementById("text");
  var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chat/ws";
  var socket = null;
  var delay = 500;

  function show(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function connect() {
    socket = new WebSocket(url);
    socket.onopen = function () {
      delay = 500;
      show("open", "connected");
    };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      var item = document.createElement("li");
      var who = document.createElement("strong");
      who.textContent = message.user;
      item.append(who, ": " + message.text);   // text, never HTML
      list.append(item);
    };
    socket.onclose = function (event) {
      show("closed", "disconnected (" + event.code + "), trying again");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  }

  document.getElementById("send").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = input.value.trim();
    if (text && socket && socket.readyState === WebSocket.OPEN) {
      socket.send(text);
      input.value = "";
    }
  });
  connect();
})();
