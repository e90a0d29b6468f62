"""The hand-written text that scripts/make_sample_datasets.py composes its samples from.

Data, not code: review fragments by domain and sentiment, and support tickets
by team. Changing a line changes the bundled samples (run the generator
again; tests/datasets_app/test_samples.py checks they match).
"""

# --- sentiment ------------------------------------------------------------------

# A group of things reviewed alike. `kind` picks which generic templates fit
# ("product": bought and shipped; "place": visited or booked; "digital":
# installed). Every aspect is (good clauses, bad clauses), fragments separated
# by "|", written so that any aspect fits any item of its group.
DOMAINS: dict[str, dict] = {
    "audio": {
        "kind": "product",
        "items": "these headphones|these earbuds|this speaker|the soundbar|this headset",
        "aspects": [
            (
                "the sound is crisp and full|the bass is rich without being muddy"
                "|music sounds amazing on it",
                "the sound is tinny and thin|there is a constant hiss"
                "|the bass distorts at any real volume",
            ),
            (
                "the battery easily lasts a week|battery life is excellent"
                "|it charges in under an hour",
                "the battery is dead by lunchtime|battery life is a joke"
                "|it drains even when switched off",
            ),
            (
                "it paired with my phone instantly|the bluetooth connection never drops"
                "|switching between devices is seamless",
                "it keeps dropping the bluetooth connection"
                "|pairing fails half the time|the audio lags behind the video",
            ),
            (
                "it feels solid and well built|they're comfortable for hours"
                "|the build quality is superb for the price",
                "it feels cheap and hollow|they pinch my ears after twenty minutes"
                "|the plastic creaks whenever I pick it up",
            ),
        ],
        "pos": "Honestly the best gadget I've bought this year."
        "|My old pair feels like a toy next to it.|It does everything the listing promised.",
        "neg": "It died two days after the warranty ran out."
        "|The left side stopped working after a week.|The firmware update bricked it.",
    },
    "devices": {
        "kind": "product",
        "items": "this laptop|the phone|the tablet|this e-reader|the smart watch|the new phone",
        "aspects": [
            (
                "the screen is bright and sharp|colours look accurate out of the box"
                "|the display is gorgeous",
                "the screen has a dead pixel right in the middle"
                "|the display flickers at low brightness|the screen is too dim to use outdoors",
            ),
            (
                "it's fast and never stutters|apps open instantly"
                "|it handles everything I throw at it",
                "it's painfully slow|it freezes several times a day|it takes five minutes to boot",
            ),
            (
                "the battery lasts all day and then some|it charges quickly"
                "|battery life is better than advertised",
                "the battery barely lasts the morning|it overheats while charging"
                "|the battery swelled after three months",
            ),
            (
                "setup took two minutes|the software is clean and simple"
                "|updates install without any fuss",
                "it came loaded with junk software|setup failed three times"
                "|every update breaks something",
            ),
            (
                "it feels premium|the build quality is excellent",
                "the hinge cracked within a month|the case scratches if you look at it",
            ),
        ],
        "pos": "Worth every penny.|It still works like new after a year of daily use."
        "|I use it for work and it never lets me down.",
        "neg": "It stopped turning on after a week."
        "|Mine arrived with a scratched screen and a missing cable."
        "|The manufacturer refused to repair it under warranty.",
    },
    "kitchen": {
        "kind": "product",
        "items": "this blender|the coffee maker|the air fryer|this kettle|the toaster"
        "|this stand mixer|the rice cooker",
        "aspects": [
            (
                "it's powerful and surprisingly quiet|it heats up in seconds"
                "|it does the job in half the time",
                "it's loud enough to wake the neighbours|it takes ages to heat up"
                "|it struggles with anything thicker than water",
            ),
            (
                "it's easy to clean|everything goes in the dishwasher"
                "|there are no awkward corners for food to hide in",
                "cleaning it is a nightmare|food gets stuck in every crack"
                "|the parts aren't dishwasher safe after all",
            ),
            (
                "the results are consistently great|everything comes out perfectly cooked"
                "|my morning coffee has never been better",
                "the results are wildly inconsistent|everything comes out burnt on one side"
                "|it leaves a plastic taste in everything",
            ),
            (
                "it's sturdy and takes up little space|it looks great on the counter",
                "the lid cracked in the first week|the handle snapped off|it's huge and ugly",
            ),
        ],
        "pos": "It has made mornings so much easier.|I don't know how I lived without it."
        "|Bought one for my parents too.",
        "neg": "It broke the second time I used it.|It smells like burning plastic."
        "|The warranty claim went nowhere.",
    },
    "furniture": {
        "kind": "product",
        "items": "this desk chair|the standing desk|the bookshelf|this sofa|the bed frame"
        "|this mattress|the dining table",
        "aspects": [
            (
                "assembly took twenty minutes|the instructions were clear"
                "|everything lined up perfectly",
                "assembly took three hours and two screws were missing"
                "|the instructions were useless|the holes didn't line up",
            ),
            (
                "it's really comfortable|my back pain is finally gone|I can sit on it all day",
                "it's uncomfortable after ten minutes|my back hurts more than before"
                "|it's rock hard",
            ),
            (
                "it's sturdy and doesn't wobble|it feels like it will last for decades",
                "it wobbles no matter what I do|a leg came loose within a month|it sags already",
            ),
            (
                "it looks even better than the photos|the finish is beautiful",
                "the finish was chipped on arrival|it looks nothing like the photos",
            ),
        ],
        "pos": "It's the best thing in our living room.|Great value for solid furniture."
        "|Delivery and setup were painless.",
        "neg": "It arrived damaged and the seller blamed the courier."
        "|It's already going to the tip.|The smell of glue still hasn't gone.",
    },
    "clothing": {
        "kind": "product",
        "items": "this jacket|these jeans|the dress|these running shoes|this sweater"
        "|the boots|the raincoat|this t-shirt|the backpack",
        "aspects": [
            (
                "it fits perfectly|the sizing is spot on|it's flattering and comfortable",
                "it runs two sizes small|the fit is boxy and strange"
                "|the sizing chart is completely wrong",
            ),
            (
                "the material feels soft and substantial|the stitching is neat and strong"
                "|it still looks new after dozens of washes",
                "the material is thin and scratchy|a seam split the first time I wore it"
                "|it shrank and faded after one wash",
            ),
            (
                "the colour is exactly like the photos"
                "|it looks much more expensive than it was"
                "|I get compliments every time I wear it",
                "the colour looks nothing like the photos|it looks cheap in person"
                "|it pilled within a week",
            ),
            (
                "it's comfortable all day|it keeps me dry in the worst weather",
                "it's uncomfortable after an hour|it soaked through in light rain",
            ),
        ],
        "pos": "I ordered a second one in another colour.|My new favourite thing to wear."
        "|Great quality for the money.",
        "neg": "Sent it back the same day.|The return process was a nightmare too."
        "|Straight into the donation bag.",
    },
    "skincare": {
        "kind": "product",
        "items": "this moisturiser|the shampoo|this sunscreen|the face serum"
        "|this body wash|the conditioner",
        "aspects": [
            (
                "my skin feels soft all day|it cleared up my dry patches"
                "|my hair has never been shinier",
                "it broke me out within two days|it left my skin red and itchy"
                "|my hair feels like straw",
            ),
            (
                "it smells lovely without being overpowering|it's completely unscented",
                "it smells like a chemical plant|the fragrance gives me a headache",
            ),
            (
                "it sinks in quickly|a little goes a long way|the texture is light",
                "it leaves a greasy film|it pills on my face|the bottle was half empty",
            ),
        ],
        "pos": "My dermatologist approves.|I've gone through three bottles already."
        "|Part of my routine for good.",
        "neg": "Into the bin it went.|I had a reaction and had to see a doctor."
        "|Clearly a different formula from before.",
    },
    "books": {
        "kind": "product",
        "items": "this novel|the sequel|this thriller|the memoir|this fantasy series"
        "|the short story collection",
        "aspects": [
            (
                "the characters felt real|I couldn't put it down"
                "|the plot kept me guessing until the end",
                "the characters were flat|I had to force myself to finish it"
                "|the twist was obvious from chapter two",
            ),
            (
                "the writing is gorgeous|every sentence is sharp|the dialogue is wonderfully funny",
                "the writing is clumsy and repetitive|the dialogue is wooden|it's full of typos",
            ),
            (
                "the ending was perfect|the pacing is spot on|it builds beautifully",
                "the ending made no sense|the middle drags for a hundred pages"
                "|it just stops instead of ending",
            ),
        ],
        "pos": "I've recommended it to everyone I know.|I'll be reading it again."
        "|It stayed with me for days.",
        "neg": "I want those hours of my life back.|Skip this one.|Didn't finish it.",
    },
    "games": {
        "kind": "product",
        "items": "this board game|the Lego set|this jigsaw puzzle|the card game|this building kit",
        "aspects": [
            (
                "the kids play with it every day|it keeps our game nights lively"
                "|it's genuinely fun for all ages",
                "the kids lost interest after ten minutes|it's boring after the first round"
                "|nobody wanted to play it twice",
            ),
            (
                "the pieces are sturdy|all the pieces were there|the quality is superb",
                "pieces were missing from the box|the parts broke on the first day"
                "|the cardboard is flimsy",
            ),
            (
                "the instructions are clear|you can learn it in five minutes",
                "the instructions are impossible to follow|the rules contradict themselves",
            ),
        ],
        "pos": "Best birthday present we've given.|We've played it twenty times already."
        "|Hours of fun.",
        "neg": "Total waste of a birthday present.|Back in the box for good."
        "|Collecting dust already.",
    },
    "apps": {
        "kind": "digital",
        "items": "this app|the latest update|the budgeting app|this meditation app"
        "|the language learning app|this photo editor|the banking app|this to-do list app",
        "aspects": [
            (
                "the interface is clean and intuitive|it's easy to find everything"
                "|the design is beautiful",
                "the interface is a cluttered mess|I can never find the settings"
                "|the new layout is confusing",
            ),
            (
                "it runs smoothly even on my old phone|it opens instantly"
                "|sync across devices is flawless",
                "it crashes every few minutes|it drains my battery in the background"
                "|it freezes whenever I try to save",
            ),
            (
                "there are no annoying ads|the free version is genuinely useful"
                "|the subscription is fair for what you get",
                "there's an ad after every single tap"
                "|everything useful is locked behind a subscription"
                "|it charged me after I cancelled the trial",
            ),
            (
                "support answered within an hour|the developers actually listen to feedback"
                "|updates keep adding useful features",
                "support never replied to my emails|every update removes something I used"
                "|it lost all my data after the update",
            ),
        ],
        "pos": "I use it every single day.|It has genuinely changed my routine."
        "|Five stars, no notes.",
        "neg": "Uninstalled.|One star is generous.|It won't even open anymore.",
    },
    "restaurants": {
        "kind": "place",
        "items": "this place|the new ramen bar|this bistro|the pizzeria on Main Street"
        "|this cafe|the brunch spot|the steakhouse|the sushi place downtown",
        "aspects": [
            (
                "the food was outstanding|every dish was full of flavour"
                "|the pasta was cooked perfectly|the dumplings were the best I've had",
                "the food was bland and lukewarm|my steak came out grey and chewy"
                "|the fish did not taste fresh|the soup was so salty I couldn't finish it",
            ),
            (
                "our server was attentive and funny|the staff made us feel at home"
                "|service was quick even on a busy Friday",
                "we waited forty minutes just to order"
                "|the waiter rolled his eyes when we asked for water"
                "|nobody checked on us once",
            ),
            (
                "the portions are generous|prices are fair for what you get"
                "|the lunch special is a steal",
                "the portions are tiny for the price|it is wildly overpriced"
                "|they charged us for drinks we never got",
            ),
            (
                "the room is cosy and not too loud|the terrace is lovely in the evening"
                "|it's spotless inside",
                "it was so loud we had to shout|the tables were sticky|the bathroom was filthy",
            ),
        ],
        "pos": "We're already planning our next visit."
        "|Book ahead, it fills up for good reason.|The dessert alone is worth the trip.",
        "neg": "I got food poisoning the same night.|We left hungry and annoyed."
        "|They lost our reservation and shrugged.",
    },
    "hotels": {
        "kind": "place",
        "items": "this hotel|the resort|our room|the B&B|this guesthouse"
        "|the airport hotel|the holiday apartment",
        "aspects": [
            (
                "the bed was incredibly comfortable|the room was spotless|we slept like babies",
                "the mattress sagged in the middle|there were hairs in the shower"
                "|the sheets smelled damp",
            ),
            (
                "the front desk upgraded us for free|check-in took two minutes"
                "|the host gave us great tips for dinner",
                "check-in took over an hour|reception was rude and unhelpful"
                "|they gave our room away and offered nothing",
            ),
            (
                "the location is perfect, right by the station"
                "|the view from the balcony was stunning"
                "|everything is within walking distance",
                "the area felt unsafe at night|our window faced a brick wall"
                "|it's miles from anything and taxis are expensive",
            ),
            (
                "breakfast had a huge choice|the wifi was fast everywhere|it was blissfully quiet",
                "breakfast was stale pastries and instant coffee"
                "|the wifi barely worked|the walls are paper thin",
            ),
        ],
        "pos": "We've already booked again for next summer."
        "|It felt like a home away from home.|Great value for a city this expensive.",
        "neg": "The photos online must be ten years old.|We checked out a day early."
        "|Hidden fees doubled the price at checkout.",
    },
    "travel": {
        "kind": "place",
        "items": "this airline|the flight to Lisbon|the train company|the ferry"
        "|the coach company|the night train",
        "aspects": [
            (
                "we left and arrived right on time|boarding was quick and organised"
                "|the connection was easy",
                "we were delayed six hours with no explanation"
                "|they cancelled at the last minute|we missed our connection because of them",
            ),
            (
                "the crew were warm and helpful|the staff went out of their way for us",
                "the crew were rude|nobody at the desk could tell us anything",
            ),
            (
                "the seats were roomy|there was plenty of legroom|the cabin was spotless",
                "the seats were cramped and broken|my seat wouldn't recline"
                "|the toilets were out of order the whole way",
            ),
            (
                "the price was very reasonable|there were no hidden fees|my luggage arrived first",
                "they charged for everything, even water|the hidden fees were outrageous"
                "|they lost my suitcase",
            ),
        ],
        "pos": "I'd travel with them again in a heartbeat.|Stress-free from start to finish."
        "|The best part of our trip, honestly.",
        "neg": "Worst travel experience of my life.|Never booking with them again."
        "|Our holiday started with a nightmare.",
    },
    "trades": {
        "kind": "place",
        "items": "the plumber|this cleaning service|the mechanic|the electrician"
        "|the moving company|this handyman|the phone provider",
        "aspects": [
            (
                "they showed up exactly on time|they could come the same day"
                "|they were in and out in an hour",
                "they showed up three hours late|it took a month to get an appointment"
                "|they never showed up at all",
            ),
            (
                "the work was flawless|they fixed the problem properly the first time"
                "|they explained everything clearly",
                "they made the problem worse|the job was sloppy"
                "|they had to come back twice and it's still not right",
            ),
            (
                "the price was exactly what they quoted|they didn't try to upsell me",
                "the bill was double the quote|they kept pushing extras I didn't need"
                "|cancelling the contract was impossible",
            ),
            (
                "they were friendly and patient|they cleaned up after themselves",
                "they were condescending|they left a mess everywhere",
            ),
        ],
        "pos": "Finally found someone I trust.|I've sent three friends to them already."
        "|Can't recommend them enough.",
        "neg": "I'm reporting them.|Look anywhere else.|I had to pay someone else to fix it.",
    },
    "shops": {
        "kind": "place",
        "items": "this online shop|the delivery service|this seller|the grocery delivery"
        "|the courier|the subscription box",
        "aspects": [
            (
                "it arrived a day early|delivery was fast and tracked the whole way"
                "|the driver called ahead and was very polite",
                "it arrived two weeks late|the tracking said delivered but nothing came"
                "|the driver left it out in the rain",
            ),
            (
                "everything was packed carefully|nothing was missing"
                "|the packaging was minimal and recyclable",
                "the box was crushed and the contents broken|half the items were missing"
                "|the eggs were smashed and the milk was warm",
            ),
            (
                "the refund went through the same day"
                "|customer service sorted it out immediately"
                "|they replaced a damaged item without any fuss",
                "getting a refund took six weeks of emails"
                "|customer service kept me on hold for an hour"
                "|they refused to replace a damaged item",
            ),
        ],
        "pos": "Smoothest order I've placed online.|I'll definitely order from them again."
        "|Reliable every single time.",
        "neg": "I'm still waiting for a response.|Shopping elsewhere from now on."
        "|They kept my money and sent nothing.",
    },
}

# Templates: a leading "[kind,kind]" limits one to those kinds of domain.
# Short whole reviews, several of them hinging on a negation.
SHORT = {
    "positive": "Love it!|Not bad at all.|Can't complain.|No complaints whatsoever."
    "|Couldn't be happier.|Exceeded my expectations.|[product]Would buy again.|Ten out of ten."
    "|[product]Solid purchase.|Does the job, and does it well.|Pleasantly surprised."
    "|Not a single problem so far.|Way better than I expected.|Never disappoints."
    "|Highly recommended.|Perfect.|[product]So glad I bought it.|Brilliant value."
    "|Didn't expect much, but wow.|Can't fault it.|Nothing to dislike.|Money well spent."
    "|Great stuff.|Hard to beat at this price.|Exactly what I needed.|[place]Will be back!"
    "|[place]Lovely experience.|[digital]Does exactly what it should.",
    "negative": "Terrible.|Not worth it.|Not impressed.|Would not recommend.|Never again."
    "|Complete waste of money.|Doesn't work.|Avoid.|Very disappointing."
    "|[product]Broke immediately.|Not good at all.|Save your money."
    "|[product]Not what I ordered.|[product]Wouldn't buy it again.|Absolute rubbish."
    "|[product]Returned it.|Worse than I expected.|Not even close to the description."
    "|Regret it.|Can't recommend this.|Nothing works as advertised.|Utterly useless."
    "|[product]Cheap junk.|Not worth the hype.|[product,digital]Stopped working after a day."
    "|[place]Won't be going back.|[place]Awful experience.|[digital]Deleted it.",
}

OPENERS = {
    "positive": "Really happy with {item}.|I've been using {item} for a few months and I love it."
    "|I absolutely love {item}.|{Item} is fantastic.|So pleased with {item}."
    "|[product]Bought {item} on a whim and I'm glad I did."
    "|{Item} turned out to be a great choice.|Five stars for {item}."
    "|I keep recommending {item} to friends.|Where do I start with {item}?"
    "|[product,digital]Tried {item} last week.|[place]Tried {item} last week."
    "|Quick review of {item}.|Second time trying {item}, and it was even better.",
    "negative": "Really disappointed with {item}.|I've been using {item} for a few months and"
    " I regret it.|I can't stand {item}.|{Item} is a letdown.|So frustrated with {item}."
    "|[product]Bought {item} on a whim and I wish I hadn't."
    "|{Item} turned out to be a mistake.|One star for {item}."
    "|I keep warning friends about {item}.|Where do I start with {item}?"
    "|[product,digital]Tried {item} last week.|[place]Tried {item} last week."
    "|Quick review of {item}.|Second time trying {item}, and it was even worse.",
}

CLOSERS = {
    "positive": "Highly recommend.|[product]Would buy again in a heartbeat.|Five stars."
    "|No regrets at all.|Couldn't be happier.|Definitely worth it.|Go for it."
    "|Very happy customer here.|I'm a fan.|You won't be disappointed."
    "|[place]We'll be back.|[place]Already planning to go back.",
    "negative": "Avoid.|[product]Returning it.|Not worth the money.|Never again."
    "|Save yourself the trouble.|Very disappointed.|Don't bother.|Deeply unimpressed."
    "|Look elsewhere.|I want my money back.|[place]Never going back."
    "|[digital]Uninstalling.",
}

# Sentences whose polarity hinges on a negation.
NEGATED = {
    "positive": "I honestly can't find anything wrong with {item}."
    "|{Item} is not bad at all, actually.|Not a single complaint about {item}."
    "|I never thought {item} would be this good.|I couldn't be happier with {item}."
    "|{Item} didn't disappoint.|[product,digital]No regrets about buying {item}."
    "|{Item} never lets me down.|I wasn't expecting much from {item}, but I was wrong."
    "|There's nothing I would change about {item}."
    "|I can't say enough good things about {item}."
    "|Don't listen to the bad reviews of {item}.|No idea why {item} has a low rating.",
    "negative": "{Item} is not worth the money.|I'm not impressed with {item}."
    "|I wouldn't recommend {item} to anyone.|{Item} isn't anything like the description."
    "|I can't recommend {item}, sadly.|[product,digital]{Item} never worked properly."
    "|Nothing about {item} feels right.|[product]I won't be buying {item} again."
    "|[place]I won't be using {item} again.|{Item} is not what I was promised."
    "|No one should have to put up with {item}."
    "|I didn't enjoy a single minute with {item}."
    "|{Item} isn't good, whatever the other reviews say.|No idea how {item} has good ratings.",
}

# Mixed opinions that resolve: first a clause of the other polarity, then the
# verdict. {other} and {main} are aspect clauses, {item} the thing reviewed.
CONTRAST = {
    "positive": "I was sceptical at first, but {main}.|Sure, {other}, but {main}, so I'm happy."
    "|{Other}, but honestly {main} and that's what matters."
    "|The only downside is that {other}; otherwise {main}."
    "|[product]I almost returned {item} because {other}. Glad I didn't: {main}."
    "|[place]I almost cancelled because {other}. Glad I didn't: {main}."
    "|Yes, {other}. Still, {main}, and that wins me over."
    "|Despite the fact that {other}, {main}."
    "|My first impression wasn't great because {other}, but {main}."
    "|[product]Shipping took forever, but {item} itself is great: {main}."
    "|It's not perfect ({other}), but {main} and I love it."
    "|I read bad reviews saying {other}, but in my experience {main}.",
    "negative": "I wanted to love {item}, but {main}.|Sure, {other}, but {main}, so no thanks."
    "|{Other}, but honestly {main} and that ruins it."
    "|It looks great on paper. In reality, {main}."
    "|At first I was thrilled because {other}. Then {main}."
    "|Yes, {other}. Still, {main}, and that's a dealbreaker."
    "|Even though {other}, {main}."
    "|[product,digital]It started out fine, but after a few weeks {main}."
    "|[place]It started out fine, but then {main}."
    "|The reviews are glowing and {other}, but {main}."
    "|I really tried to like {item}, but {main}."
    "|I read good reviews saying {other}, but in my experience {main}.",
}

# Joiners put before a later aspect sentence now and then.
LINKS = ["Also, ", "Plus, ", "On top of that, ", "Honestly, ", "And ", "Oh, and "]

# --- support ticket routing ---------------------------------------------------

# Per team: problems ({x} is the thing the customer names) and things. Some
# things ("my order", "the app", "the website") belong to two teams: the
# problem decides.
ROUTING: dict[str, dict[str, str]] = {
    "billing": {
        "things": "my order|the annual plan|my subscription|the upgrade|my membership"
        "|the headphones|last month|the premium plan",
        "problems": "I was charged twice for {x}|my card was billed for {x} after I cancelled"
        "|the invoice for {x} is wrong|I'm still waiting for a refund for {x}"
        "|why did the price of {x} go up|there's a payment for {x} I don't recognise"
        "|can I get a receipt for {x}|the discount wasn't applied to {x}"
        "|please update the card I pay for {x} with|you charged me for {x} without asking"
        "|cancel the direct debit for {x}|I paid for {x} but it says unpaid"
        "|can I pay for {x} in instalments|I was overcharged for {x}"
        "|the VAT on {x} looks wrong|I got a late fee for {x}|refund {x} please"
        "|the bill for {x} is too high|I want to dispute the charge for {x}"
        "|the payment for {x} failed but money left my account|I need an invoice for {x}"
        "|my bank statement shows a strange charge for {x}|stop the payments for {x}"
        "|I was charged the wrong price for {x}|how much do I owe for {x}"
        "|the money for {x} was taken twice|I never agreed to pay for {x}"
        "|I've been billed twice for {x}|where is my refund for {x}"
        "|the amount charged for {x} doesn't match the invoice|I want my money back for {x}"
        "|please stop charging my card for {x}|my bank shows two payments for {x}"
        "|you owe me money for {x}|I paid more for {x} than the advertised price",
    },
    "shipping": {
        "things": "my parcel|the package|my order|the replacement|the sofa|my shoes|the gift"
        "|the box",
        "problems": "{x} hasn't arrived yet|the tracking number for {x} doesn't work"
        "|{x} was delivered to the wrong address|the courier says {x} came but it didn't"
        "|when will {x} ship|can I change the delivery address for {x}|{x} arrived crushed"
        "|delivery of {x} is a week late|{x} is stuck at the depot|can you send {x} express"
        "|the driver left {x} in the rain|tracking for {x} hasn't moved in days"
        "|can I pick up {x} at the depot|do you ship {x} to Ireland|{x} never came"
        "|the delivery slot for {x} was missed|{x} was left outside my door"
        "|the courier lost {x}|{x} came without the delivery note|please redeliver {x}"
        "|where is {x}? it was due on Monday|the post office has {x} but won't release it"
        "|has {x} been dispatched|{x} was sent to my old address|shipping {x} takes forever"
        "|the postman didn't bring {x}|how much is shipping for {x}"
        "|{x} still hasn't been delivered|has {x} been posted yet"
        "|the courier never turned up with {x}|the tracking page for {x} shows nothing"
        "|{x} went to my neighbour|how long does shipping take for {x}"
        "|the delivery of {x} is overdue|{x} is lost in the post",
    },
    "technical": {
        "things": "the app|the speaker|my tablet|the smart watch|the printer|the router"
        "|the website|the camera",
        "problems": "{x} crashes when I open it|{x} won't turn on"
        "|{x} shows an error when I save|the screen of {x} stays black after the update"
        "|{x} keeps losing bluetooth|{x} won't load|{x} keeps restarting"
        "|sync stopped working on {x}|the firmware update for {x} failed"
        "|the battery of {x} drains in an hour|{x} freezes every few minutes"
        "|{x} shows error 503|the wifi on {x} keeps dropping|{x} won't connect"
        "|{x} is really slow since the update|{x} makes a buzzing noise|{x} won't charge"
        "|{x} overheats|{x} doesn't respond to touch|{x} keeps beeping"
        "|{x} gets stuck on the start screen|the page on {x} won't load after the update"
        "|{x} shows a spinning wheel forever|{x} stopped working after the update"
        "|the sound on {x} crackles|{x} won't find my wifi|{x} crashes every time"
        "|{x} is stuck on the loading screen|after the update {x} doesn't work"
        "|{x} crashes when I upload a photo|{x} won't pair with my phone"
        "|{x} only shows a blank page|the sound on {x} keeps cutting out"
        "|{x} gives me error 404|{x} switches itself off",
    },
    "account": {
        "things": "my account|the app|my profile|the website|the family plan|my login|my email"
        "|my username",
        "problems": "I can't log in to {x}|I forgot the password for {x}|please delete {x}"
        "|how do I change the email on {x}|{x} is locked|the reset link for {x} expired"
        "|I want to rename {x}|someone else logged into {x}"
        "|I never got the verification email for {x}|how do I turn on two-factor for {x}"
        "|I want to merge {x} with another one|the login code for {x} never arrives"
        "|how do I add my partner to {x}|I can't sign in to {x} on my new phone"
        "|my password for {x} doesn't work|{x} was hacked|log me out of {x} everywhere"
        "|I need to recover {x}|{x} says my email is already taken|remove my card from {x}"
        "|I can't reset the password for {x}|the sign-in code for {x} is rejected"
        "|change the phone number on {x}|{x} says wrong password|please close {x}"
        "|I don't get the password email for {x}|someone is using {x}"
        "|my password isn't accepted for {x}|I'm locked out of {x}"
        "|please close {x} and remove my data|the sign-in page for {x} doesn't know my email"
        "|the password reset email for {x} never comes"
        "|how do I update the phone number on {x}|I can't get into {x}"
        "|someone changed the password of {x}",
    },
}
GREETINGS = ["Hi, ", "Hello, ", "Hey, ", "Help! ", "Quick question: ", "Good morning, "]
SIGN_OFFS = [" Thanks.", " Please help.", " Urgent.", " Cheers", " Thank you!"]
