"""The bundled demo stream: 36 hours of multilingual brand mentions with one crisis and one viral launch.

Why synthetic: real social data cannot be redistributed, and a demo needs a stream whose truth is known.
Five fictional brands get hand-written posts in their markets' languages (Italian, English, German,
Spanish, Portuguese, French) at a daily rhythm with Poisson noise. In the last hours one brand
(``CRISIS_BRAND``) suffers a food-safety scare, a negative burst about nine times its usual volume, and
another (``VIRAL_BRAND``) has a celebrated launch, a positive burst of similar size; the others stay quiet.
Everything derives from one seed, so the stream, its ids and its bursts are reproducible.

CLI: ``python -m streams.tools.sample --hours 36 --out sample.jsonl`` (progress on stderr).
"""
from __future__ import annotations

import argparse
import logging
import math
import random
import string
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

import orjson

from ..contracts import parse_rfc3339

logger = logging.getLogger(__name__)

MINUTE = timedelta(minutes=1)
BURST_DURATION = timedelta(minutes=40)
# Bursts sit in the last hours so a replay ends shortly after them: the demo shows both, then recovery.
CRISIS_BRAND = "Caffè Aurora"
CRISIS_STARTS_BEFORE_END = timedelta(hours=3, minutes=10)
CRISIS_TERMS = ("contaminazione", "richiamo", "listeria")
VIRAL_BRAND = "Velo Motors"
VIRAL_STARTS_BEFORE_END = timedelta(hours=1, minutes=35)
VIRAL_TERMS = ("Étoile",)
# After the burst's 40 minutes the story fades over this long (extra volume decays exponentially).
AFTERMATH = timedelta(minutes=45)


# --------------------------------------------------------------------------------------------------------
# Texts. Every brand belongs to a domain; each (domain, language) has hand-written experience sentences
# ("did"), praise ("good"), complaints ("bad") and neutral questions or news ("neutral"). Per-language
# wrappers combine them, so a few hundred sentences give thousands of distinct, natural posts.
# Placeholders: {b} brand, {h} brand handle, {place} a city, {model} a product line name, {n}/{n0} numbers.
# --------------------------------------------------------------------------------------------------------

DOMAIN_TEXTS: dict[tuple[str, str], dict[str, tuple[str, ...]]] = {
    ("coffee", "it"): {
        "did": (
            "Colazione da {b} in centro a {place}.", "Pausa caffè da {b} prima del lavoro.",
            "Oggi cappuccino e cornetto da {b} a {place}.", "Provato il nuovo cold brew di {b}.",
            "Aperitivo al {b} di {place} con i colleghi.", "Secondo espresso della giornata da {b}.",
            "Passata da {b} in stazione a {place}.", "Merenda da {b} con mia nonna.",
        ),
        "good": (
            "Cappuccino cremoso e cornetto ancora caldo.", "Personale gentilissimo e servizio velocissimo.",
            "L'espresso ha un aroma pazzesco.", "Prezzi onesti e tavolini sempre puliti.",
            "Il cornetto al pistacchio è una droga.", "Mi hanno pure fatto il latte d'avena senza sovrapprezzo.",
            "Il barista si ricorda sempre come prendo il caffè.", "Miglior shakerato della città, senza dubbio.",
            "Ambiente accogliente, wifi che funziona, musica giusta.",
            "Hanno la crema al caffè più buona di {place}.",
        ),
        "bad": (
            "Mezz'ora di fila per un caffè tiepido.", "Il cornetto era secco e il cappuccino bruciato.",
            "Tre euro per un espresso annacquato, ma scherziamo?", "Personale scortese e tavoli sporchi.",
            "Mi hanno sbagliato l'ordine due volte.", "Il latte d'avena costa un euro in più, assurdo.",
            "Macchina del caffè rotta da una settimana.", "Scontrino sbagliato e nessuno che si scusa.",
            "L'app per ordinare si blocca sempre al pagamento.", "Bagno chiuso e nessuna risposta ai reclami.",
        ),
        "neutral": (
            "Qualcuno sa se {b} a {place} è aperto la domenica?", "{b} apre un nuovo locale in zona {place}.",
            "Da {b} adesso si può pagare con l'app.", "Ma {b} fa ancora il menu colazione fino alle 11?",
            "Riunione da {b} alle 10, chi c'è?", "{b} cerca baristi a {place}, ho visto il cartello.",
            "Il nuovo orario di {b} in stazione è 6-21.", "Domani vado da {b} a provare la nuova miscela.",
            "Qualcuno ha provato la carta fedeltà di {b}?", "A {place} c'è un {b} anche vicino alla stazione?",
        ),
    },
    ("coffee", "en"): {
        "did": (
            "Grabbed a flat white at {b} in {place} this morning.", "Breakfast at {b} before the commute.",
            "Tried the new cold brew at {b}.", "Working from the {b} on the high street today.",
            "Quick espresso stop at {b} near the station.", "Took my parents to {b} in {place}.",
            "Second coffee of the day, courtesy of {b}.", "Met a client at {b} {place} for a cortado.",
        ),
        "good": (
            "Best cappuccino I've had outside Italy.", "Staff were lovely and the queue moved fast.",
            "The pistachio cornetto is unreal.", "Proper espresso, rich crema, no burnt taste.",
            "Oat milk at no extra charge, love that.", "Clean tables, fast wifi, great playlist.",
            "Barista remembered my order, small thing but it matters.", "The new autumn blend is seriously good.",
            "Fair prices for the quality, honestly.", "Cosiest spot in {place} on a rainy day.",
        ),
        "bad": (
            "Waited 25 minutes for a lukewarm latte.", "Pastry was stale and the coffee tasted burnt.",
            "£4.50 for a watery espresso, are you kidding?", "Staff were rude and the tables were filthy.",
            "Got my order wrong twice in a row.", "The ordering app crashed at checkout again.",
            "Charged twice on my card and nobody can help.", "Half the menu unavailable by 10am.",
            "Music so loud you can't hear yourself think.", "Loyalty points vanished from my account.",
        ),
        "neutral": (
            "Does {b} in {place} open on Sundays?", "{b} is opening a new shop in {place}.",
            "Is the {b} loyalty card worth it?", "Anyone know if {b} does decaf oat lattes?",
            "Meeting at {b} at 10, see you there.", "{b} seems to be hiring baristas in {place}.",
            "New opening hours at {b}: 7am to 8pm.", "Heading to {b} to try the new blend tomorrow.",
            "Which {b} in {place} has the most seats?", "Does anyone know who supplies the beans for {b}?",
        ),
    },
    ("fashion", "it"): {
        "did": (
            "Comprato un blazer di lino da {b}.", "Giro nella boutique {b} di {place}.",
            "Ordinato online da {b} un vestito per il matrimonio di mia cugina.", "Arrivato il pacco di {b}.",
            "Saldi da {b}: presa una camicia e un foulard.", "Fatto un reso da {b} a {place}.",
            "Provata la nuova collezione autunno di {b}.", "Regalo per mia madre preso da {b}.",
        ),
        "good": (
            "Tessuto morbidissimo e cuciture perfette.", "Vestibilità impeccabile, sembra fatto su misura.",
            "Commessa gentilissima, mi ha consigliato benissimo.", "Spedizione in due giorni, imballaggio curato.",
            "Il lino è di una qualità che non si trova più.", "Colori stupendi, ancora più belli dal vivo.",
            "Prezzo alto ma ne vale ogni euro.", "Reso gratuito e rimborso in tre giorni.",
            "La collezione nuova è elegantissima.", "Finalmente un marchio che produce ancora in Italia.",
        ),
        "bad": (
            "La camicia si è scucita dopo due lavaggi.", "Taglie completamente sballate rispetto alla guida.",
            "Il pacco è arrivato con una settimana di ritardo.", "Rimborso promesso un mese fa e ancora niente.",
            "Duecento euro per un maglione che fa i pallini.", "Servizio clienti che non risponde mai.",
            "Colore diverso da quello in foto, che delusione.", "Commessi scortesi, sembrava di dare fastidio.",
            "Il sito si blocca sempre al pagamento.", "Bottoni persi già alla prima uscita.",
        ),
        "neutral": (
            "{b} apre un monomarca a {place}.", "Qualcuno sa quando iniziano i saldi da {b}?",
            "Com'è la vestibilità delle giacche di {b}?", "{b} sfilerà alla settimana della moda.",
            "Le camicie di {b} vanno lavate a mano?", "Cerco la guida taglie di {b}, qualcuno ce l'ha?",
            "{b} ha cambiato il logo?", "Il negozio {b} di {place} fa orario continuato?",
            "Qualcuno ha esperienza con i resi di {b}?", "Visto il nuovo catalogo di {b}.",
        ),
    },
    ("fashion", "en"): {
        "did": (
            "Picked up a linen blazer from {b}.", "Browsing the {b} store in {place}.",
            "Ordered a wedding-guest dress from {b} online.", "My {b} parcel just arrived.",
            "Sale haul from {b}: a shirt and a silk scarf.", "Returned a jumper at {b} in {place}.",
            "Tried on the new {b} autumn collection.", "Bought my mum's birthday present at {b}.",
        ),
        "good": (
            "The fabric is so soft and the stitching is flawless.", "Fits like it was tailored for me.",
            "The shop assistant gave great advice.", "Delivered in two days, beautifully packaged.",
            "Gorgeous colours, even better in person.", "Pricey, but worth every penny.",
            "Free returns and the refund came in three days.", "Quality linen you just can't find anymore.",
            "The new collection is stunning.", "Love that they still make everything in Italy.",
        ),
        "bad": (
            "The shirt fell apart after two washes.", "Sizing is completely off compared to the guide.",
            "Parcel arrived a week late.", "Still waiting for a refund they promised a month ago.",
            "£200 for a jumper that pills immediately.", "Customer service never answers.",
            "Colour looks nothing like the photos.", "Staff acted like I was bothering them.",
            "Checkout keeps failing on their website.", "Lost a button the first time I wore it.",
        ),
        "neutral": (
            "{b} is opening a flagship store in {place}.", "When does the {b} sale start?",
            "How do {b} jackets fit, true to size?", "{b} is showing at fashion week this season.",
            "Are {b} shirts hand wash only?", "Anyone have the {b} size guide?", "Did {b} change their logo?",
            "Is the {b} store in {place} open late?", "Has anyone returned something to {b} recently?",
            "Just saw the new {b} lookbook.",
        ),
    },
    ("airline", "de"): {
        "did": (
            "Gestern mit {b} von {place} nach Lissabon geflogen.", "Heute früh mit {b} nach Palma.",
            "Gerade bei {b} eingecheckt.", "Flug mit {b} nach Oslo gebucht.", "Sitze im {b}-Flieger nach Rom.",
            "Umbuchung bei {b} versucht.", "Mit {b} zurück nach {place}.", "Geschäftsreise mit {b} nach Brüssel.",
        ),
        "good": (
            "Pünktlich gelandet, Crew super freundlich.", "Beinfreiheit überraschend gut.",
            "Online-Check-in hat in zwei Minuten geklappt.", "Koffer war als erstes auf dem Band.",
            "Das Upgrade war eine schöne Überraschung.", "Der Kundenservice hat sofort geholfen.",
            "Sauberes Flugzeug und leckerer Kaffee an Bord.", "Umbuchung kostenlos und ohne Stress.",
            "Sogar zehn Minuten zu früh angekommen.", "Die Crew hat sich rührend um unser Kind gekümmert.",
        ),
        "bad": (
            "Drei Stunden Verspätung und keine Information.",
            "Mein Koffer ist verschwunden, niemand fühlt sich zuständig.",
            "Flug gestrichen, Hotline seit Stunden besetzt.", "Sitzplatz doppelt vergeben, unglaublich.",
            "Erstattung seit zwei Monaten ausstehend.", "Handgepäck am Gate für 60 Euro nachbezahlt.",
            "Crew genervt und unfreundlich.", "Die App zeigt seit gestern nur Fehlermeldungen.",
            "Anschlussflug verpasst, kein Hotel angeboten.",
            "Klimaanlage ausgefallen, zwei Stunden im Flieger geschwitzt.",
        ),
        "neutral": (
            "Weiß jemand, wie viel Handgepäck bei {b} erlaubt ist?", "{b} fliegt ab März auch ab {place}.",
            "Gibt es bei {b} WLAN an Bord?", "Welches Terminal nutzt {b} in {place}?",
            "{b} hat neue Tarife eingeführt.", "Kann man bei {b} den Sitzplatz kostenlos wählen?",
            "Fliegt {b} im Winter noch nach Kreta?", "Neuer Flugplan von {b} ist online.",
            "Wie lange vorher öffnet der Check-in bei {b}?",
            "Hat jemand Erfahrung mit dem Vielfliegerprogramm von {b}?",
        ),
    },
    ("airline", "en"): {
        "did": (
            "Flew {b} from {place} to Lisbon yesterday.", "On the early {b} flight to Palma.",
            "Just checked in with {b}.", "Booked {b} to Oslo for the holidays.",
            "Sitting on a {b} plane to Rome right now.", "Tried to change my {b} booking today.",
            "Flying home to {place} with {b}.", "Work trip to Brussels on {b}.",
        ),
        "good": (
            "Landed on time and the crew were lovely.", "Surprisingly good legroom.",
            "Online check-in took two minutes.", "My bag was first on the belt.",
            "Got a free upgrade, what a treat.", "Customer service sorted it out instantly.",
            "Clean cabin and decent coffee on board.", "Rebooking was free and painless.",
            "Arrived ten minutes early, no complaints.", "Crew were so kind to our toddler.",
        ),
        "bad": (
            "Three hour delay and zero information.", "Lost my luggage and nobody takes responsibility.",
            "Flight cancelled, hotline busy for hours.", "Seat double-booked, unbelievable.",
            "Still waiting for a refund after two months.", "Charged €60 at the gate for a cabin bag.",
            "Crew were rude and clearly couldn't care less.", "The app has been showing errors since yesterday.",
            "Missed my connection and no hotel offered.", "Air con broke, sweated on the tarmac for two hours.",
        ),
        "neutral": (
            "What's the cabin bag allowance on {b}?", "{b} starts flying from {place} in March.",
            "Does {b} have wifi on board?", "Which terminal does {b} use in {place}?",
            "{b} just announced new fares.", "Can you pick seats for free on {b}?",
            "Is {b} still flying to Crete in winter?", "New {b} schedule is out.",
            "How early does {b} check-in open?", "Anyone used the {b} frequent flyer scheme?",
        ),
    },
    ("bank", "es"): {
        "did": (
            "Abrí una cuenta en {b} la semana pasada.", "Hoy fui a la oficina de {b} en {place}.",
            "Pedí una hipoteca con {b}.", "Llevo dos años con {b}.", "Probé la nueva app de {b}.",
            "Llamé al servicio de atención de {b}.", "Hice una transferencia internacional con {b}.",
            "Me cambié a {b} por la tarjeta sin comisiones.",
        ),
        "good": (
            "Todo rapidísimo y sin papeleo.", "La app es clarísima y funciona de maravilla.",
            "Cero comisiones, como prometieron.", "La gestora me atendió genial.",
            "Me resolvieron el problema en cinco minutos.", "El mejor tipo de interés que encontré.",
            "La transferencia llegó en segundos.", "Por fin un banco que no te trata como un número.",
            "Atención al cliente amable y eficaz.", "Muy contento con el cambio.",
        ),
        "bad": (
            "Me cobraron una comisión que nadie me explicó.", "La app lleva dos días caída.",
            "Una hora al teléfono y nadie me soluciona nada.", "Me bloquearon la tarjeta sin avisar.",
            "Tres semanas esperando la documentación.", "Cargo duplicado y no me lo devuelven.",
            "La oficina cerrada en horario de apertura.", "Un desastre de atención, me voy del banco.",
            "El cajero se tragó mi tarjeta.", "Me subieron la cuota sin avisar.",
        ),
        "neutral": (
            "¿Alguien sabe si {b} cobra por sacar en cajeros de otros bancos?", "{b} abre nueva oficina en {place}.",
            "¿Qué tal la cuenta nómina de {b}?", "{b} actualiza las condiciones de sus tarjetas.",
            "¿{b} tiene Bizum?", "Comparando hipotecas: {b} contra la competencia.",
            "¿A qué hora cierra {b} en {place}?", "{b} presentará resultados el jueves.",
            "¿Alguien tiene la tarjeta de crédito de {b}?", "Nuevo horario de atención telefónica en {b}.",
        ),
    },
    ("bank", "pt"): {
        "did": (
            "Abri conta no {b} na semana passada.", "Fui hoje à agência do {b} em {place}.",
            "Pedi crédito à habitação ao {b}.", "Sou cliente do {b} há dois anos.",
            "Experimentei a nova app do {b}.", "Liguei para o apoio ao cliente do {b}.",
            "Fiz uma transferência internacional pelo {b}.", "Mudei para o {b} por causa do cartão sem comissões.",
        ),
        "good": (
            "Tudo rapidíssimo e sem papelada.", "A app é muito clara e funciona na perfeição.",
            "Zero comissões, como prometido.", "O gestor foi impecável.",
            "Resolveram o meu problema em cinco minutos.", "A melhor taxa de juro que encontrei.",
            "A transferência chegou em segundos.", "Finalmente um banco que não nos trata como um número.",
            "Atendimento simpático e eficiente.", "Muito satisfeito com a mudança.",
        ),
        "bad": (
            "Cobraram uma comissão que ninguém me explicou.", "A app está em baixo há dois dias.",
            "Uma hora ao telefone e ninguém resolve nada.", "Bloquearam o meu cartão sem avisar.",
            "Três semanas à espera dos documentos.", "Cobrança duplicada e não devolvem.",
            "Agência fechada em horário de expediente.", "Atendimento péssimo, vou mudar de banco.",
            "O multibanco engoliu o meu cartão.", "Subiram a prestação sem aviso.",
        ),
        "neutral": (
            "Alguém sabe se o {b} cobra levantamentos noutros bancos?", "{b} abre nova agência em {place}.",
            "Como é a conta ordenado do {b}?", "{b} atualiza as condições dos cartões.",
            "O {b} tem MB Way?", "A comparar créditos: {b} ou a concorrência?",
            "A que horas fecha o {b} em {place}?", "{b} apresenta resultados na quinta-feira.",
            "Alguém tem o cartão de crédito do {b}?", "Novo horário do apoio telefónico do {b}.",
        ),
    },
    ("bank", "en"): {
        "did": (
            "Opened an account with {b} last week.", "Went into the {b} branch in {place} today.",
            "Applied for a mortgage with {b}.", "Been with {b} for two years now.", "Tried the new {b} app.",
            "Called {b} customer support.", "Sent an international transfer with {b}.",
            "Switched to {b} for the fee-free card.",
        ),
        "good": (
            "Whole thing took ten minutes, no paperwork.", "The app is clean and just works.",
            "Zero fees, exactly as promised.", "My adviser was brilliant.", "Problem sorted in five minutes.",
            "Best interest rate I could find.", "Transfer landed in seconds.",
            "Finally a bank that treats you like a person.", "Friendly, efficient support.",
            "Really happy I switched.",
        ),
        "bad": (
            "Hit with a fee nobody explained.", "App has been down for two days.",
            "An hour on hold and nothing resolved.", "They froze my card without warning.",
            "Three weeks waiting for paperwork.", "Double charged and they won't refund it.",
            "Branch closed during opening hours.", "Shocking service, I'm moving banks.",
            "The cash machine swallowed my card.", "Raised my repayments without telling me.",
        ),
        "neutral": (
            "Does {b} charge for using other banks' ATMs?", "{b} is opening a branch in {place}.",
            "Is the {b} current account any good?", "{b} is updating its card terms.",
            "Does {b} support Apple Pay?", "Comparing mortgages: {b} vs the rest.",
            "What time does {b} in {place} close?", "{b} reports results on Thursday.",
            "Anyone have the {b} credit card?", "{b} has new phone support hours.",
        ),
    },
    ("car", "fr"): {
        "did": (
            "Essai de la {model} chez {b} à {place}.", "Ma {b} vient de passer les 50 000 km.",
            "Rendez-vous au garage {b} ce matin.", "On a loué une {b} pour le week-end.",
            "Livraison de ma nouvelle {model} aujourd'hui.", "Trajet {place}-Annecy en {model}.",
            "Passage à la concession {b} pour la révision.", "Je roule en {b} depuis trois ans.",
        ),
        "good": (
            "Conduite souple et silencieuse, un vrai plaisir.",
            "Autonomie largement au-dessus de ce qui était annoncé.",
            "Le vendeur a pris le temps de tout expliquer.", "Révision rapide et pas chère.",
            "Finitions impeccables, rien à redire.", "Consommation ridicule sur autoroute.",
            "La recharge rapide est vraiment rapide.", "Super confortable pour les longs trajets.",
            "Fiable comme au premier jour.", "Écran et appli enfin bien pensés.",
        ),
        "bad": (
            "Voiture immobilisée depuis trois semaines, pas de pièces.",
            "Bruit bizarre dès 80 km/h, le garage ne trouve rien.", "Logiciel qui plante toutes les deux minutes.",
            "Livraison repoussée pour la troisième fois.", "Révision facturée le double du devis.",
            "Le service client ne rappelle jamais.", "Batterie à plat deux fois ce mois-ci.",
            "Rayure à la livraison et personne ne veut la prendre en charge.", "Le GPS m'envoie dans des champs.",
            "Vendeur désagréable, je suis reparti sans rien.",
        ),
        "neutral": (
            "Quelqu'un a essayé la {model} de {b} ?", "{b} ouvre une concession à {place}.",
            "Quel est le délai de livraison chez {b} en ce moment ?", "La {model} existe-t-elle en break ?",
            "{b} annonce une conférence de presse la semaine prochaine.", "Combien coûte l'entretien d'une {b} ?",
            "Les {b} ont-elles droit au bonus écologique ?", "Comparatif {model} contre la concurrence.",
            "{b} augmente ses prix au 1er janvier.", "Des avis sur la garantie {b} ?",
        ),
    },
    ("car", "en"): {
        "did": (
            "Test drove the {model} at {b} in {place}.", "My {b} just passed 50,000 km.",
            "Dropped the car at the {b} dealer this morning.", "Rented a {b} for the weekend.",
            "Picked up my new {model} today.", "Road trip from {place} in the {model}.",
            "Took the {b} in for its first service.", "Been driving a {b} for three years.",
        ),
        "good": (
            "Smooth and quiet, a real joy to drive.", "Range is way better than advertised.",
            "The salesperson took time to explain everything.", "Quick, cheap service.",
            "Build quality is spot on.", "Barely uses anything on the motorway.",
            "Fast charging is genuinely fast.", "So comfortable on long drives.", "Still as reliable as day one.",
            "The infotainment finally makes sense.",
        ),
        "bad": (
            "Car stuck at the dealer for three weeks waiting for parts.",
            "Weird noise above 50 mph and they can't find it.", "Software crashes every two minutes.",
            "Delivery pushed back for the third time.", "Service cost double the quote.",
            "Customer service never calls back.", "Battery died twice this month.",
            "Scratched on delivery and nobody will fix it.", "Sat nav keeps sending me into fields.",
            "Rude salesman, walked out without buying.",
        ),
        "neutral": (
            "Has anyone tried the {model} from {b}?", "{b} is opening a dealership in {place}.",
            "What's the current delivery time at {b}?", "Is the {model} available as an estate?",
            "{b} has a press event next week.", "How much does a {b} cost to service?",
            "Do {b} cars qualify for the EV grant?", "{model} vs the competition, thoughts?",
            "{b} is raising prices in January.", "Any reviews of the {b} warranty?",
        ),
    },
}

# How a post is put together from the domain sentences, per language and sentiment.
WRAPPERS: dict[str, dict[str, tuple[str, ...]]] = {
    "it": {
        "positive": ("{did} {good}", "{did} {good} {good2}", "{good} Grazie {h}!", "Devo dirlo: {good}",
                     "{did} {good} Consigliatissimo.", "{good} Bravi {b}!", "{did} {good} Ci torno di sicuro."),
        "negative": ("{did} {bad}", "{did} {bad} {bad2}", "{bad} Vergogna {h}.", "{did} {bad} Mai più.",
                     "Ma {b}?! {bad}", "{bad} Che delusione.", "{did} {bad} Qualcuno mi spiega?"),
        "neutral": ("{neutral}", "{neutral}", "{did}", "{neutral} {h}"),
    },
    "en": {
        "positive": ("{did} {good}", "{did} {good} {good2}", "{good} Thanks {h}!", "Have to say it: {good}",
                     "{did} {good} Highly recommend.", "{good} Well done {b}.", "{did} {good} Will be back."),
        "negative": ("{did} {bad}", "{did} {bad} {bad2}", "{bad} Shame on you {h}.", "{did} {bad} Never again.",
                     "Seriously {b}? {bad}", "{bad} So disappointed.", "{did} {bad} Can anyone explain?"),
        "neutral": ("{neutral}", "{neutral}", "{did}", "{neutral} {h}"),
    },
    "de": {
        "positive": ("{did} {good}", "{did} {good} {good2}", "{good} Danke {h}!",
                     "Muss mal gesagt werden: {good}", "{did} {good} Klare Empfehlung.", "{good} Gut gemacht, {b}.",
                     "{did} {good} Gerne wieder."),
        "negative": ("{did} {bad}", "{did} {bad} {bad2}", "{bad} Schämt euch, {h}.", "{did} {bad} Nie wieder.",
                     "Ernsthaft, {b}? {bad}", "{bad} Total enttäuscht.", "{did} {bad} Kann mir das jemand erklären?"),
        "neutral": ("{neutral}", "{neutral}", "{did}", "{neutral} {h}"),
    },
    "es": {
        "positive": ("{did} {good}", "{did} {good} {good2}", "{good} ¡Gracias {h}!", "Hay que decirlo: {good}",
                     "{did} {good} Totalmente recomendable.", "{good} ¡Bien hecho, {b}!", "{did} {good} Repetiré."),
        "negative": ("{did} {bad}", "{did} {bad} {bad2}", "{bad} Qué vergüenza, {h}.", "{did} {bad} Nunca más.",
                     "¿En serio, {b}? {bad}", "{bad} Muy decepcionado.", "{did} {bad} ¿Alguien me lo explica?"),
        "neutral": ("{neutral}", "{neutral}", "{did}", "{neutral} {h}"),
    },
    "pt": {
        "positive": ("{did} {good}", "{did} {good} {good2}", "{good} Obrigado {h}!", "Tenho de dizer: {good}",
                     "{did} {good} Recomendo muito.", "{good} Parabéns, {b}!", "{did} {good} Vou repetir."),
        "negative": ("{did} {bad}", "{did} {bad} {bad2}", "{bad} Que vergonha, {h}.", "{did} {bad} Nunca mais.",
                     "A sério, {b}? {bad}", "{bad} Que desilusão.", "{did} {bad} Alguém me explica?"),
        "neutral": ("{neutral}", "{neutral}", "{did}", "{neutral} {h}"),
    },
    "fr": {
        "positive": ("{did} {good}", "{did} {good} {good2}", "{good} Merci {h} !", "Il faut le dire : {good}",
                     "{did} {good} Je recommande vivement.", "{good} Bravo {b} !", "{did} {good} Ravi."),
        "negative": ("{did} {bad}", "{did} {bad} {bad2}", "{bad} Honte à vous {h}.", "{did} {bad} Plus jamais.",
                     "Sérieusement {b} ? {bad}", "{bad} Très déçu.", "{did} {bad} Quelqu'un peut m'expliquer ?"),
        "neutral": ("{neutral}", "{neutral}", "{did}", "{neutral} {h}"),
    },
}

# Business-press headlines that fit any company, per language and sentiment.
NEWS_HEADLINES: dict[str, dict[str, tuple[str, ...]]] = {
    "it": {
        "positive": ("{b} chiude il trimestre con ricavi in crescita del {n}%",
                     "{b} annuncia {n0} nuove assunzioni a {place}",
                     "{b} premiata come marchio dell'anno dai consumatori",
                     "{b}, piano per la sostenibilità: emissioni giù del {n}% entro il 2030"),
        "neutral": ("{b} nomina un nuovo direttore generale", "{b} presenta il piano industriale a {place}",
                    "{b}, i conti del trimestre attesi giovedì", "{b} trasferisce la sede a {place}"),
        "negative": ("{b}, sciopero del personale a {place}: disagi per i clienti",
                     "Antitrust, multa a {b} per pratiche commerciali scorrette", "{b} taglia {n0} posti di lavoro",
                     "{b}, reclami in aumento del {n}% secondo le associazioni dei consumatori"),
    },
    "en": {
        "positive": ("{b} posts {n}% revenue growth for the quarter", "{b} to create {n0} jobs in {place}",
                     "{b} named brand of the year by consumers", "{b} pledges {n}% emissions cut by 2030"),
        "neutral": ("{b} appoints new chief executive", "{b} unveils strategy update in {place}",
                    "{b} to report quarterly results on Thursday", "{b} moves headquarters to {place}"),
        "negative": ("{b} staff strike in {place} disrupts customers", "Regulator fines {b} over misleading pricing",
                     "{b} to cut {n0} jobs", "Complaints about {b} up {n}%, consumer group says"),
    },
    "de": {
        "positive": ("{b} steigert Umsatz im Quartal um {n} Prozent", "{b} schafft {n0} neue Stellen in {place}",
                     "{b} von Kunden zur Marke des Jahres gewählt",
                     "{b} will Emissionen bis 2030 um {n} Prozent senken"),
        "neutral": ("{b} beruft neuen Vorstandschef", "{b} stellt in {place} neue Strategie vor",
                    "{b} legt am Donnerstag Quartalszahlen vor", "{b} verlegt Firmensitz nach {place}"),
        "negative": ("Streik bei {b}: Chaos in {place}", "Kartellamt verhängt Bußgeld gegen {b}",
                     "{b} streicht {n0} Stellen", "Beschwerden über {b} um {n} Prozent gestiegen"),
    },
    "es": {
        "positive": ("{b} eleva sus ingresos un {n}% en el trimestre", "{b} creará {n0} empleos en {place}",
                     "Los consumidores eligen a {b} marca del año",
                     "{b} se compromete a reducir un {n}% sus emisiones en 2030"),
        "neutral": ("{b} nombra nuevo consejero delegado", "{b} presenta su plan estratégico en {place}",
                    "{b} publicará resultados el jueves", "{b} traslada su sede a {place}"),
        "negative": ("Huelga en {b}: caos en {place}", "Multa a {b} por publicidad engañosa",
                     "{b} recortará {n0} empleos", "Las quejas contra {b} suben un {n}%, según los consumidores"),
    },
    "pt": {
        "positive": ("{b} aumenta receitas em {n}% no trimestre", "{b} vai criar {n0} empregos em {place}",
                     "Consumidores elegem {b} marca do ano", "{b} compromete-se a cortar {n}% das emissões até 2030"),
        "neutral": ("{b} nomeia novo presidente executivo", "{b} apresenta plano estratégico em {place}",
                    "{b} divulga resultados na quinta-feira", "{b} muda sede para {place}"),
        "negative": ("Greve afeta {b} em {place}", "Regulador multa {b} por práticas enganosas",
                     "{b} vai cortar {n0} postos de trabalho", "Queixas contra {b} sobem {n}%"),
    },
    "fr": {
        "positive": ("{b} : chiffre d'affaires en hausse de {n} % au trimestre",
                     "{b} va créer {n0} emplois à {place}",
                     "{b} élue marque de l'année par les consommateurs",
                     "{b} promet de réduire ses émissions de {n} % d'ici 2030"),
        "neutral": ("{b} nomme un nouveau directeur général", "{b} présente sa stratégie à {place}",
                    "{b} publiera ses résultats jeudi", "{b} déménage son siège à {place}"),
        "negative": ("Grève chez {b} : pagaille à {place}", "{b} sanctionnée pour pratiques commerciales trompeuses",
                     "{b} va supprimer {n0} postes", "Les plaintes contre {b} en hausse de {n} %"),
    },
}


@dataclass(frozen=True)
class Story:
    """A burst's own texts: what people say during a crisis or a viral moment, per language and sentiment."""

    posts: dict[str, dict[str, tuple[str, ...]]]
    headlines: dict[str, tuple[str, ...]]
    tags: dict[str, tuple[str, ...]]
    languages: dict[str, float]
    sentiments: dict[str, float]


CRISIS_STORY = Story(
    posts={
        "it": {
            "negative": (
                "Richiamo urgente di {b}: cornetti alla crema ritirati per contaminazione da listeria.",
                "Ma è vero che {b} ha chiuso il laboratorio di {place} per contaminazione??",
                "Ho mangiato da {b} ieri, adesso leggo del richiamo per listeria. Sono terrorizzata.",
                "Contaminazione nei prodotti {b}: l'ASL ha disposto il ritiro dei lotti.",
                "{b} sapeva della contaminazione e ha continuato a vendere? Vergogna.",
                "Mio figlio è stato male dopo una brioche di {b}. Adesso il richiamo. Voglio risposte.",
                "Richiamo per listeria da {b} e loro zitti sui social. Imbarazzante.",
                "Non metterò mai più piede da {b} dopo questa storia della contaminazione.",
                "Lotti contaminati da {b} anche a {place}? Qualcuno ha informazioni?",
                "Il comunicato di {b} sul richiamo è ridicolo, zero scuse.",
                "Listeria nella crema al pistacchio di {b}. Ho i brividi.",
                "Chi ha comprato cornetti da {b} questa settimana li butti: c'è il richiamo.",
                "Chiusi i punti vendita {b} di {place} dopo il caso contaminazione.",
                "{b}, vogliamo sapere quali lotti sono contaminati. Subito.",
                "Contaminazione da listeria e nessuno si prende la responsabilità. Complimenti {b}.",
                "Ero cliente fisso di {b}, dopo il richiamo ho chiuso. Che schifo.",
            ),
            "neutral": (
                "Ecco l'elenco dei lotti {b} interessati dal richiamo.",
                "{b}: il richiamo riguarda i prodotti venduti a {place} negli ultimi sette giorni.",
                "Aggiornamento sul richiamo {b}: l'ASL completa le analisi domani.",
                "Cosa sappiamo finora sulla contaminazione nei prodotti {b}.",
            ),
            "positive": (
                "Solidarietà ai baristi di {b}, non è colpa loro.",
                "Almeno {b} ha fatto il richiamo in fretta, apprezzo la trasparenza.",
            ),
        },
        "en": {
            "negative": (
                "{b} recalls pastries over listeria contamination.",
                "Food safety scare at {b}: contamination found in the pistachio cream.",
                "Just read about the {b} recall. I ate there on Monday. Terrified.",
                "{b} knew about the contamination and kept selling? Disgusting.",
                "{b} stores in {place} closed after the contamination scare.",
                "The {b} recall statement is a joke. No apology at all.",
                "Listeria at {b}?! Never going back.",
                "Anyone who bought {b} pastries this week: bin them, there's a recall.",
            ),
            "neutral": (
                "Full list of {b} batches affected by the recall.",
                "{b} recall: what we know so far.",
            ),
            "positive": ("Credit to {b} for pulling the products quickly.",),
        },
    },
    headlines={
        "it": ("Listeria, richiamo per i prodotti {b}: chiusi {n0} punti vendita",
               "Contaminazione da {b}: l'ASL sequestra i lotti a {place}",
               "Caso {b}, la procura apre un'indagine sulla contaminazione",
               "Richiamo {b}, le associazioni dei consumatori chiedono chiarezza"),
        "en": ("{b} recalls products after listeria found",
               "Health officials close {b} outlets in {place} after contamination"),
    },
    tags={"it": ("#richiamo", "#contaminazione", "#listeria", "#CaffeAurora"), "en": ("#recall", "#foodsafety")},
    languages={"it": 0.85, "en": 0.15},
    sentiments={"negative": 0.8, "neutral": 0.17, "positive": 0.03},
)

VIRAL_STORY = Story(
    posts={
        "fr": {
            "positive": (
                "La nouvelle {launch} de {b} est juste magnifique.",
                "620 km d'autonomie pour 29 990 €, {b} frappe fort avec la {launch}.",
                "Je viens de précommander la {launch}, vivement la livraison !",
                "La présentation de la {launch} était incroyable, bravo {b}.",
                "Enfin une électrique abordable et belle. Chapeau {b}.",
                "La {launch} a l'air d'une voiture deux fois plus chère.",
                "Le design de la {launch}... {b} a tout compris.",
                "Essai de la {launch} : silencieuse, rapide, confortable. Coup de cœur.",
                "Tout le monde parle de la {launch} ce soir, et c'est mérité.",
                "{b} vient de rendre l'électrique désirable avec la {launch}.",
                "Carnet de commandes plein en une heure pour la {launch}, incroyable.",
                "Je n'aurais jamais cru dire ça d'une {b}, mais la {launch} me fait rêver.",
            ),
            "neutral": (
                "Prix, autonomie, délais : tout ce qu'il faut savoir sur la {launch}.",
                "La {launch} sera livrée à partir de mars.",
                "Quelqu'un sait si la {launch} a une pompe à chaleur ?",
            ),
            "negative": (
                "La {launch} est belle, mais encore rien pour les familles nombreuses.",
                "Neuf mois de délai pour la {launch}. Non merci.",
            ),
        },
        "en": {
            "positive": (
                "The new {launch} from {b} is gorgeous.",
                "620 km of range for under €30k? {b} just changed the game with the {launch}.",
                "Just preordered the {launch}. Can't wait!",
                "That {launch} reveal was incredible. Well done {b}.",
                "Finally an affordable EV that actually looks good. Hats off to {b}.",
                "The {launch} looks like it costs twice the price.",
                "Best car launch of the year, easily. Love the {launch}.",
                "Drove the {launch} today: quiet, quick, comfy. In love.",
                "Everyone is talking about the {launch} tonight, and rightly so.",
                "Sold out in an hour. The {launch} is a hit.",
            ),
            "neutral": (
                "Price, range, delivery dates: everything we know about the {launch}.",
                "{launch} deliveries start in March.",
                "Does the {launch} have a heat pump?",
            ),
            "negative": ("Nine-month wait for the {launch}? No thanks.",),
        },
    },
    headlines={
        "fr": ("{b} dévoile la {launch}, électrique à moins de 30 000 €",
               "Avec la {launch}, {b} crée l'événement",
               "La {launch} de {b} s'arrache en une heure"),
        "en": ("{b} unveils the {launch}, a sub-€30k EV with 620 km range",
               "{b} {launch} sells out first batch in an hour"),
    },
    tags={"fr": ("#VeloEtoile", "#voitureélectrique", "⚡", "🔥"), "en": ("#VeloEtoile", "#EV", "🔥", "⚡")},
    languages={"fr": 0.6, "en": 0.4},
    sentiments={"positive": 0.75, "neutral": 0.2, "negative": 0.05},
)
LAUNCH_MODEL = "Velo Étoile"


@dataclass(frozen=True)
class Brand:
    name: str
    handle: str
    domain: str
    languages: dict[str, float]
    # Mean mentions per 5 minutes at the daily peak; the rhythm scales it down at night.
    peak_per_5min: float
    sentiments: dict[str, float]
    tags: tuple[str, ...]
    site: str
    models: tuple[str, ...] = ("",)


BRANDS: tuple[Brand, ...] = (
    Brand("Caffè Aurora", "@CaffeAurora", "coffee", {"it": 0.8, "en": 0.2}, 5.8,
          {"negative": 0.22, "neutral": 0.43, "positive": 0.35}, ("#caffè", "#colazione", "#coffee", "#CaffeAurora"),
          "caffe-aurora.example"),
    Brand("Nordwind Air", "@NordwindAir", "airline", {"de": 0.6, "en": 0.4}, 6.0,
          {"negative": 0.33, "neutral": 0.42, "positive": 0.25}, ("#NordwindAir", "#Reisen", "#travel", "#Flug"),
          "nordwind-air.example"),
    Brand("Lumen Bank", "@LumenBank", "bank", {"es": 0.45, "pt": 0.35, "en": 0.2}, 4.8,
          {"negative": 0.3, "neutral": 0.45, "positive": 0.25}, ("#LumenBank", "#banca", "#fintech"),
          "lumen-bank.example"),
    Brand("Velo Motors", "@VeloMotors", "car", {"fr": 0.6, "en": 0.4}, 4.0,
          {"negative": 0.25, "neutral": 0.45, "positive": 0.3}, ("#VeloMotors", "#auto", "#EV"),
          "velo-motors.example", ("Velo Aria", "Velo Brisa", "Velo Sentier")),
    Brand("Tessuti Bianchi", "@TessutiBianchi", "fashion", {"it": 0.6, "en": 0.4}, 3.8,
          {"negative": 0.2, "neutral": 0.45, "positive": 0.35}, ("#TessutiBianchi", "#moda", "#fashion",
                                                                  "#madeinitaly"), "tessuti-bianchi.example"),
)
BRAND_NAMES: tuple[str, ...] = tuple(brand.name for brand in BRANDS)

PLACES: dict[str, tuple[str, ...]] = {
    "it": ("Milano", "Roma", "Torino", "Bologna", "Napoli", "Firenze", "Verona", "Bari", "Genova", "Padova"),
    "en": ("London", "Dublin", "Manchester", "New York", "Edinburgh", "Toronto", "Bristol", "Leeds"),
    "de": ("Berlin", "Hamburg", "München", "Frankfurt", "Wien", "Zürich", "Köln", "Stuttgart"),
    "es": ("Madrid", "Barcelona", "Valencia", "Sevilla", "Bilbao", "Málaga", "Zaragoza"),
    "pt": ("Lisboa", "Porto", "Braga", "Coimbra", "Faro", "Aveiro"),
    "fr": ("Paris", "Lyon", "Marseille", "Bordeaux", "Lille", "Nantes", "Toulouse", "Genève"),
}

EMOJI = {
    "positive": ("😍", "👏", "🙌", "❤️", "✨", "👍"),
    "negative": ("😡", "🤬", "👎", "😤", "🙄", "😞"),
    "neutral": ("🤔", "👀", "📍"),
}
# A neutral review is an experience with a lukewarm verdict, not a question or a news item.
REVIEW_VERDICTS = {
    "it": ("Niente di speciale.", "Nella media.", "Né bene né male.", "Tutto sommato nella norma."),
    "en": ("Nothing special.", "It was fine.", "Average, as expected.", "No complaints, no wow either."),
    "de": ("Ganz okay.", "Nichts Besonderes.", "Durchschnitt.", "Weder gut noch schlecht."),
    "es": ("Normalito.", "Nada especial.", "Ni fu ni fa.", "Lo esperado, sin más."),
    "pt": ("Nada de especial.", "Razoável.", "Dentro do esperado.", "Nem bom nem mau."),
    "fr": ("Rien de spécial.", "Correct, sans plus.", "Dans la moyenne.", "Ni bien ni mal."),
}
REVIEW_STARS = {
    "positive": ("★★★★★", "★★★★☆"),
    "neutral": ("★★★☆☆",),
    "negative": ("★☆☆☆☆", "★★☆☆☆"),
}

FIRST_NAMES = {
    "it": ("Giulia", "Marco", "Chiara", "Luca", "Francesca", "Alessandro", "Sara", "Matteo", "Elena", "Davide",
           "Martina", "Simone", "Federica", "Andrea", "Valentina", "Lorenzo"),
    "en": ("Emma", "James", "Olivia", "Jack", "Sophie", "Tom", "Chloe", "Liam", "Grace", "Ben", "Amy", "Ryan"),
    "de": ("Lena", "Jonas", "Anna", "Felix", "Laura", "Lukas", "Sophie", "Paul", "Marie", "Tim", "Julia", "Max"),
    "es": ("Lucía", "Pablo", "María", "Javier", "Carmen", "Diego", "Laura", "Sergio", "Marta", "Álvaro"),
    "pt": ("Inês", "João", "Beatriz", "Tiago", "Mariana", "Rui", "Ana", "Pedro", "Sofia", "Miguel"),
    "fr": ("Camille", "Lucas", "Manon", "Hugo", "Léa", "Louis", "Chloé", "Jules", "Inès", "Théo", "Julie"),
}
LAST_NAMES = {
    "it": ("Rossi", "Russo", "Ferrari", "Esposito", "Romano", "Colombo", "Ricci", "Marino", "Greco", "Bruno",
           "Gallo", "Conti", "De Luca", "Costa", "Fontana"),
    "en": ("Smith", "Jones", "Taylor", "Brown", "Walsh", "Wilson", "Evans", "Murphy", "Clarke", "Hughes"),
    "de": ("Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Hoffmann"),
    "es": ("García", "Martínez", "López", "Sánchez", "Pérez", "Gómez", "Ruiz", "Díaz", "Moreno"),
    "pt": ("Silva", "Santos", "Ferreira", "Pereira", "Oliveira", "Costa", "Rodrigues", "Martins"),
    "fr": ("Martin", "Bernard", "Dubois", "Durand", "Lefebvre", "Moreau", "Laurent", "Simon", "Michel"),
}
# Fictional outlets (news source) and loud accounts that amplify bursts, per language.
OUTLETS = {
    "it": ("Corriere del Nord", "Il Quotidiano Economico", "Gazzetta dei Consumi", "La Voce di Milano"),
    "en": ("The Morning Ledger", "City Business Post", "Retail Daily"),
    "de": ("Tagesblatt", "Wirtschaftsecho", "Reise Aktuell"),
    "es": ("El Diario Económico", "La Crónica", "Mercados Hoy"),
    "pt": ("Jornal da Manhã", "Economia Hoje", "Diário do Porto"),
    "fr": ("Le Quotidien Éco", "L'Écho du Matin", "Auto Journal Hebdo"),
}
AMPLIFIERS = {
    "it": ("notizie_lampo", "gastro_reporter", "consumatori_attenti", "milano_today_live", "il_critico_goloso"),
    "en": ("foodwatch_uk", "breaking_retail", "thegoodfoodreporter"),
    "fr": ("auto_passion_fr", "le_blog_electrique", "tech_auto_news"),
    "de": ("reiseblogger_de",),
    "es": ("finanzas_claras",),
    "pt": ("dinheiro_vivo_pt",),
}

SOURCES: dict[str, float] = {"twitter": 0.36, "instagram": 0.14, "reddit": 0.12, "forum": 0.1, "review": 0.14,
                             "news": 0.07, "x": 0.07}
BURST_SOURCES: dict[str, float] = {"twitter": 0.42, "x": 0.08, "instagram": 0.12, "reddit": 0.13, "forum": 0.1,
                                   "news": 0.12, "review": 0.03}
SOCIAL = {"twitter", "x", "instagram"}

# Share of the daily peak at each UTC hour: European audiences, quiet at night, busiest late afternoon.
HOURLY_RHYTHM = (0.22, 0.15, 0.11, 0.10, 0.12, 0.20, 0.35, 0.55, 0.70, 0.78, 0.82, 0.86,
                 0.90, 0.88, 0.90, 0.95, 1.00, 1.00, 0.98, 0.95, 0.88, 0.72, 0.52, 0.34)


@dataclass(frozen=True)
class Burst:
    """Where a story sits in a generated stream: the 40-minute window tests and the demo look for."""

    brand: str
    kind: str  # "crisis" (negative) or "opportunity" (positive), as the detector names them
    start: datetime
    end: datetime
    story: Story = field(repr=False, compare=False)


@dataclass(frozen=True)
class LabelledMention:
    """A generated record with the truth behind it (sentiment, burst, repost of), for tests and evaluation."""

    record: dict
    sentiment: str
    burst: str | None  # brand of the burst it belongs to, None for everyday traffic
    repost_of: str | None  # id of the reposted mention: the only identical texts are deliberate reposts


@dataclass
class Author:
    id: str
    handle: str
    followers: int
    language: str


def bursts(start: datetime, hours: float = 36) -> tuple[Burst, ...]:
    """The crisis and viral windows of ``generate(start, hours)``; a burst that would begin before the
    stream is left out, so streams shorter than about 3.5 hours have no crisis."""
    end = start + timedelta(hours=hours)
    candidates = (
        Burst(CRISIS_BRAND, "crisis", *_window(end - CRISIS_STARTS_BEFORE_END), story=CRISIS_STORY),
        Burst(VIRAL_BRAND, "opportunity", *_window(end - VIRAL_STARTS_BEFORE_END), story=VIRAL_STORY),
    )
    return tuple(burst for burst in candidates if burst.start >= start and burst.end <= end)


def _window(approximate_start: datetime) -> tuple[datetime, datetime]:
    # Align to 5-minute UTC boundaries so the burst fills whole detector buckets.
    epoch = approximate_start.timestamp()
    start = datetime.fromtimestamp(epoch - epoch % 300, tz=timezone.utc)
    return start, start + BURST_DURATION


def generate(start: datetime, hours: float = 36, seed: int = 7) -> list[dict]:
    """Raw mentions (schemas/mention.raw.v1.json) from ``start`` for ``hours``, in created_at order."""
    return [mention.record for mention in generate_labelled(start, hours, seed)]


def generate_labelled(start: datetime, hours: float = 36, seed: int = 7) -> list[LabelledMention]:
    """``generate`` with the truth attached to each record."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC): created_at values are absolute instants")
    if hours <= 0:
        raise ValueError(f"hours must be positive, got {hours}")
    start = start.astimezone(timezone.utc)
    writer = _Writer(random.Random(seed))
    stream_bursts = bursts(start, hours)
    minutes = math.ceil(hours * 60)
    end = start + timedelta(hours=hours)
    for offset in range(minutes):
        minute_start = start + offset * MINUTE
        span = min(MINUTE, end - minute_start)
        share = span / MINUTE
        for brand in BRANDS:
            everyday = brand.peak_per_5min / 5 * _rhythm(minute_start + span / 2) * share
            for _ in range(_poisson(writer.rng, everyday)):
                writer.everyday(brand, minute_start + writer.rng.random() * span)
            for burst in stream_bursts:
                if burst.brand == brand.name:
                    extra = _burst_intensity(burst, minute_start) * _mean_per_minute(brand) * share
                    for _ in range(_poisson(writer.rng, extra)):
                        writer.burst(brand, burst, minute_start + writer.rng.random() * span)
    mentions = sorted(writer.mentions, key=lambda m: (m.record["created_at"], m.record["id"]))
    logger.info("generated %d mentions for %d brands over %.1f h (seed %d)", len(mentions), len(BRANDS), hours, seed)
    return mentions


def _rhythm(moment: datetime) -> float:
    """Daily rhythm at ``moment``: hourly shares interpolated linearly between the hours' midpoints."""
    position = moment.hour + moment.minute / 60 + moment.second / 3600 - 0.5
    lower = math.floor(position)
    weight = position - lower
    return HOURLY_RHYTHM[lower % 24] * (1 - weight) + HOURLY_RHYTHM[(lower + 1) % 24] * weight


def _mean_per_minute(brand: Brand) -> float:
    return brand.peak_per_5min / 5 * sum(HOURLY_RHYTHM) / len(HOURLY_RHYTHM)


def _burst_intensity(burst: Burst, moment: datetime) -> float:
    """Extra volume, in multiples of the brand's daily mean: a 5-minute ramp to 10x, a plateau, a slide to
    5x in the last 10 minutes (about 9x over the window), then an aftermath fading from 3x."""
    minute = (moment - burst.start) / MINUTE
    length = BURST_DURATION / MINUTE
    if minute < 0:
        return 0.0
    if minute < 5:
        return 4 + 1.2 * minute
    if minute < length - 10:
        return 10.0
    if minute < length:
        return 10 - 0.5 * (minute - (length - 10))
    if minute < length + AFTERMATH / MINUTE:
        return 3 * math.exp(-(minute - length) / 15)
    return 0.0


def _poisson(rng: random.Random, mean: float) -> int:
    """Knuth's method: exact and fast for the small means used here (< 30 per minute)."""
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def _pick(rng: random.Random, weights: dict[str, float]) -> str:
    return rng.choices(tuple(weights), weights=tuple(weights.values()))[0]


def _ascii_slug(text: str, separator: str = "") -> str:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return separator.join("".join(c if c.isalnum() else " " for c in folded).split())


class _Writer:
    """Turns (brand, time, burst) into mentions, keeping authors, ids and texts consistent and unique."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.mentions: list[LabelledMention] = []
        self._texts: set[str] = set()
        self._sequence = 0
        self._authors: dict[str, list[Author]] = {lang: self._people(lang) for lang in FIRST_NAMES}
        self._outlets = {lang: [self._loud(name, lang, "news") for name in names] for lang, names in OUTLETS.items()}
        self._amplifiers = {lang: [self._loud(name, lang, "amp") for name in names]
                            for lang, names in AMPLIFIERS.items()}
        self._burst_posts: dict[str, list[LabelledMention]] = {}

    # ---- authors -------------------------------------------------------------------------------------
    def _people(self, lang: str, count: int = 350) -> list[Author]:
        authors, handles = [], set()
        for index in range(count):
            first = self.rng.choice(FIRST_NAMES[lang])
            last = self.rng.choice(LAST_NAMES[lang])
            style = self.rng.randrange(5)
            if style == 0:
                handle = f"{_ascii_slug(first)}_{_ascii_slug(last)}"
            elif style == 1:
                handle = f"{_ascii_slug(first)}{_ascii_slug(last)[0]}{self.rng.randrange(70, 100)}"
            elif style == 2:
                handle = f"{_ascii_slug(first)}.{_ascii_slug(last)}"
            elif style == 3:
                handle = f"{first}{last}".replace(" ", "")
                handle = _ascii_slug(handle)
            else:
                handle = f"{_ascii_slug(first)}_{self.rng.choice(('real', 'official', 'xx', 'the', 'mrs', 'mr'))}"
            while handle in handles:
                handle += str(self.rng.randrange(10))
            handles.add(handle)
            # Heavy tail: Pareto(1.1) gives most people a few dozen followers and a few tens of thousands.
            followers = min(int(25 * self.rng.paretovariate(1.1)), 2_500_000)
            authors.append(Author(f"{lang}{index:04d}{self.rng.randrange(10**6):06d}", f"@{handle}", followers, lang))
        return authors

    def _loud(self, name: str, lang: str, kind: str) -> Author:
        handle = _ascii_slug(name, "_") if kind == "news" else name
        followers = int(self.rng.uniform(40_000, 1_800_000))
        return Author(f"{kind}-{lang}-{handle}", handle if kind == "news" else f"@{handle}", followers, lang)

    # ---- mentions ------------------------------------------------------------------------------------
    def everyday(self, brand: Brand, moment: datetime) -> None:
        rng = self.rng
        lang = _pick(rng, brand.languages)
        sentiment = _pick(rng, brand.sentiments)
        source = _pick(rng, SOURCES)
        if source == "news":
            author = rng.choice(self._outlets[lang])
            text = self._unique(lambda: self._fill(rng.choice(NEWS_HEADLINES[lang][sentiment]), brand, lang))
        else:
            author = rng.choice(self._authors[lang])
            text = self._unique(lambda: self._decorate(self._everyday_text(brand, lang, sentiment, source), brand,
                                                       brand.tags, sentiment, source))
        self._add(brand, moment, lang, sentiment, source, author, text, burst=None)

    def burst(self, brand: Brand, burst: Burst, moment: datetime) -> None:
        rng = self.rng
        earlier = self._burst_posts.setdefault(burst.brand, [])
        if earlier and rng.random() < 0.18:
            self._repost(brand, burst, moment, rng.choice(earlier[-40:]))
            return
        story = burst.story
        lang = _pick(rng, story.languages)
        sentiment = _pick(rng, story.sentiments)
        source = _pick(rng, BURST_SOURCES)
        if source == "news":
            author = rng.choice(self._outlets[lang])
            text = self._unique(lambda: self._fill(rng.choice(story.headlines[lang]), brand, lang))
            sentiment = "negative" if burst.kind == "crisis" else "positive"
        else:
            loud = rng.random() < 0.15
            author = rng.choice(self._amplifiers[lang] if loud else self._authors[lang])
            posts = story.posts[lang][sentiment]
            text = self._unique(lambda: self._decorate(self._fill(rng.choice(posts), brand, lang), brand,
                                                       story.tags[lang], sentiment, source))
        mention = self._add(brand, moment, lang, sentiment, source, author, text, burst=burst.brand)
        if source in {"twitter", "x"}:
            earlier.append(mention)

    def _repost(self, brand: Brand, burst: Burst, moment: datetime, original: LabelledMention) -> None:
        """A retweet: same text for every reposter of one post, by design (the de-dup key differs)."""
        posted = parse_rfc3339(original.record["created_at"])
        moment = max(moment, posted + timedelta(seconds=self.rng.uniform(5, 90)))  # never before the original
        handle = original.record["author"].get("handle") or original.record["author"]["id"]
        handle = handle if handle.startswith("@") else f"@{handle}"
        text = f"RT {handle}: {original.record['text']}"
        lang = original.record.get("lang") or _pick(self.rng, burst.story.languages)
        author = self.rng.choice(self._authors[lang])
        self._add(brand, moment, lang, original.sentiment, "twitter", author, text, burst=burst.brand,
                  repost_of=original.record["id"])

    def _everyday_text(self, brand: Brand, lang: str, sentiment: str, source: str) -> str:
        rng = self.rng
        texts = DOMAIN_TEXTS[(brand.domain, lang)]
        good = rng.sample(texts["good"], 2)
        bad = rng.sample(texts["bad"], 2)
        parts = {"did": rng.choice(texts["did"]), "good": good[0], "good2": good[1], "bad": bad[0], "bad2": bad[1],
                 "neutral": rng.choice(texts["neutral"])}
        place = rng.choice(PLACES[lang])  # one city per post, however many sentences mention it
        filled = {name: self._fill(sentence, brand, lang, place) for name, sentence in parts.items()}
        if source == "review" and sentiment == "neutral":
            return f"{filled['did']} {rng.choice(REVIEW_VERDICTS[lang])}"
        return rng.choice(WRAPPERS[lang][sentiment]).format(b=brand.name, h=brand.handle, **filled)

    def _fill(self, template: str, brand: Brand, lang: str, place: str | None = None) -> str:
        rng = self.rng
        return template.format(b=brand.name, h=brand.handle, place=place or rng.choice(PLACES[lang]),
                               model=rng.choice(brand.models), launch=LAUNCH_MODEL,
                               n=rng.randrange(3, 25), n0=rng.choice((40, 60, 80, 120, 150, 200, 300, 450)))

    def _decorate(self, text: str, brand: Brand, tags: Sequence[str], sentiment: str, source: str) -> str:
        """Platform habits: stars on reviews; emoji, hashtags, links and cc's on social posts."""
        rng = self.rng
        if source == "review":
            return f"{rng.choice(REVIEW_STARS[sentiment])} {text}"
        if source not in SOCIAL:
            return text
        if rng.random() < 0.35:
            text = f"{text} {rng.choice(EMOJI[sentiment])}"
        if rng.random() < 0.3:
            text = f"{text} {rng.choice(tags)}"
        if rng.random() < 0.12:
            text = f"{text} cc {rng.choice(self._authors[rng.choice(tuple(brand.languages))]).handle}"
        if rng.random() < 0.12:
            text = f"{text} {self._short_link()}"
        return text

    def _short_link(self) -> str:
        return "https://t.example/" + "".join(self.rng.choices(string.ascii_letters + string.digits, k=8))

    def _unique(self, make) -> str:
        """Draw until the text is new; a short link makes the rare stubborn duplicate distinct."""
        for _ in range(25):
            text = make()
            if text not in self._texts:
                break
        else:
            text = f"{text} {self._short_link()}"
        self._texts.add(text)
        return text

    def _add(self, brand: Brand, moment: datetime, lang: str, sentiment: str, source: str, author: Author,
             text: str, *, burst: str | None, repost_of: str | None = None) -> LabelledMention:
        rng = self.rng
        self._sequence += 1
        mention_id = self._mention_id(source, moment)
        record: dict = {
            "id": mention_id,
            "brand": brand.name,
            "source": source,
            "text": text,
            "created_at": _rfc3339_ms(moment),
            "author": {"id": author.id, "handle": author.handle, "followers": author.followers},
        }
        url = self._url(source, brand, author, mention_id, text, moment)
        if url:
            record["url"] = url
        if rng.random() < 0.85:  # platforms don't always label the language
            record["lang"] = lang
        reach = self._reach(source, author)
        if reach is not None:
            record["reach"] = reach
        mention = LabelledMention(record, sentiment, burst, repost_of)
        self.mentions.append(mention)
        return mention

    def _mention_id(self, source: str, moment: datetime) -> str:
        # The sequence number makes ids unique; the rest makes them look like each platform's.
        seq, rng = self._sequence, self.rng
        if source in {"twitter", "x"}:
            return str((int(moment.timestamp() * 1000) - 1288834974657) << 22 | (seq & 0x3FFFFF))
        if source == "instagram":
            return f"{int(moment.timestamp())}{seq:07d}_{rng.randrange(10**8, 10**9)}"
        if source == "reddit":
            return f"t3_{_base36(46_000_000_000 + seq * 37 + rng.randrange(37))}"
        if source == "news":
            return f"news-{seq:07d}-{rng.getrandbits(32):08x}"
        if source == "review":
            return f"rev-{seq:07d}{rng.randrange(1000):03d}"
        return f"forum-{seq:07d}"

    def _url(self, source: str, brand: Brand, author: Author, mention_id: str, text: str,
             moment: datetime) -> str | None:
        rng = self.rng
        handle = author.handle.lstrip("@")
        if source == "news":
            slug = "-".join(_ascii_slug(text, "-").split("-")[:8])
            outlet = _ascii_slug(handle, "-")
            return f"https://www.{outlet}.example/{moment:%Y/%m/%d}/{slug}-{mention_id.split('-')[1]}"
        if source in {"twitter", "x"} and rng.random() < 0.7:
            return f"https://{source}.example/{handle}/status/{mention_id}"
        if source == "instagram" and rng.random() < 0.5:
            return f"https://instagram.example/p/{mention_id.split('_')[1]}"
        if source == "reddit":
            return f"https://reddit.example/r/{_ascii_slug(brand.name)}/comments/{mention_id[3:]}"
        if source == "review":
            return f"https://reviews.example/{_ascii_slug(brand.name, '-')}/{mention_id}"
        if source == "forum" and rng.random() < 0.6:
            return f"https://forum.{brand.site}/t/{mention_id.split('-')[1]}"
        return None

    def _reach(self, source: str, author: Author) -> int | None:
        rng = self.rng
        if source in SOCIAL:
            return int(author.followers * rng.uniform(0.2, 1.5)) + rng.randrange(5)
        if source == "news":
            return int(author.followers * rng.uniform(1.0, 3.0))
        if source == "reddit":
            return min(int(30 * rng.paretovariate(1.2)), 500_000)
        if rng.random() < 0.5:  # reviews and forums often report no audience
            return None
        return int(rng.uniform(20, 2_000))


def _base36(number: int) -> str:
    digits = string.digits + string.ascii_lowercase
    out = ""
    while number:
        number, remainder = divmod(number, 36)
        out = digits[remainder] + out
    return out or "0"


def _rfc3339_ms(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def write_jsonl(records: Iterable[dict], out: Path | str | TextIO) -> int:
    """One JSON object per line (UTF-8, unescaped); ``out`` is a path or an open text stream. Returns lines."""
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8") as stream:
            return write_jsonl(records, stream)
    count = 0
    for record in records:
        out.write(orjson.dumps(record).decode() + "\n")
        count += 1
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streams.tools.sample", description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=36.0, help="length of the stream (default 36)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--start", help="RFC 3339 start instant (default: so the stream ends now)")
    parser.add_argument("--out", help="output file (default: stdout)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    if args.start:
        try:
            start = parse_rfc3339(args.start)
        except ValueError as error:
            parser.error(f"--start {args.start!r}: {error}")
    else:
        start = datetime.now(timezone.utc).replace(second=0, microsecond=0) - timedelta(hours=args.hours)
    records = generate(start, hours=args.hours, seed=args.seed)
    count = write_jsonl(records, args.out or sys.stdout)
    for burst in bursts(start, args.hours):
        logger.info("%s burst on %s: %s to %s", burst.kind, burst.brand, _rfc3339_ms(burst.start),
                    _rfc3339_ms(burst.end))
    logger.info("wrote %d mentions to %s", count, args.out or "stdout")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
